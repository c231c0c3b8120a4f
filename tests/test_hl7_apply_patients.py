"""ADT updates and merges through the HL7 inbox: worklist items and the archive follow,
a merge is audited and undone from the record the log keeps."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.archive_data import Study, write_study
from pydicom.dataset import Dataset
from test_hl7_apply import SETTINGS, msa, orm

from printscp.archive.archive import Archive
from printscp.archive.index import Index, Level
from printscp.core import audit
from printscp.hl7.inbox import Inbox


def adt(trigger: str, pid: str, *, cid: str, mrg: str = "") -> bytes:
    lines = [rf"MSH|^~\&|ADT1|HOSP|PRINTSCP|HOSP|20260303120000||ADT^{trigger}^ADT_A01|"
             f"{cid}|P|2.5.1",
             f"EVN|{trigger}|20260303120000",
             pid,
             "PV1|1|I|W1^12^1",
             ]
    if mrg:
        lines.insert(3, mrg)
    return "\r".join(lines).encode() + b"\r"


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Inbox:
    monkeypatch.setattr(audit, "_node", audit._node)  # restored after the test
    audit.configure(tmp_path)
    inbox = Inbox(tmp_path, SETTINGS)
    assert msa(inbox.receive(orm()))[1] == "AA"  # PAT123 Müller, one CT step
    return inbox


def test_a08_renames_the_patient_in_the_worklist(inbox: Inbox) -> None:
    ack = inbox.receive(adt("A08", "PID|1||PAT123^^^HOSP||Meier^Hanna^B||19650413|F",
                            cid="A08-1"))
    assert msa(ack)[:3] == ["MSA", "AA", "A08-1"]
    assert ack.decode().split("\r")[0].split("|")[8] == "ACK^A08^ACK"
    (item,) = inbox.store.items()
    assert item.patient_name == "Meier^Hanna^B"
    ds = inbox.store.get(item.id)
    assert (ds.PatientBirthDate, ds.PatientSex, ds.PatientID) == ("19650413", "F", "PAT123")
    assert ds.AccessionNumber == "ACC1001"  # the order's own attributes stay
    assert ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "SCHEDULED"
    line = next(audit.lines(inbox.data_dir))
    assert line["EventID"]["code"] == "110110" and line["action"] == "hl7.patient-update"


def test_a31_updates_items_of_another_issuer_only_when_they_match(inbox: Inbox) -> None:
    ack = inbox.receive(adt("A31", "PID|1||PAT123^^^OTHER||Other^Person", cid="A31-1"))
    assert msa(ack)[1] == "AA"
    assert inbox.store.items()[0].patient_name == "Müller^Hans^^Dr"
    inbox.receive(adt("A31", "PID|1||PAT123^^^HOSP||Renamed^Hans", cid="A31-2"))
    assert inbox.store.items()[0].patient_name == "Renamed^Hans"


def test_a40_merges_worklist_items_audited_and_undone(inbox: Inbox) -> None:
    step = inbox.store.items()[0]
    inbox.store.mark(step.id, status="IN PROGRESS")
    ack = inbox.receive(adt("A40", "PID|1||GOOD1^^^HOSP||Good^Patient||19600101|M",
                            mrg="MRG|PAT123^^^HOSP", cid="A40-1"), peer="10.1.1.1")
    assert msa(ack)[1] == "AA"
    (item,) = inbox.store.items()
    assert (item.patient_id, item.patient_name) == ("GOOD1", "Good^Patient")
    assert item.status == "STARTED"  # a merge leaves the step's progress alone
    entry = inbox.log.entries()[0]
    assert entry.record["merges"] == [{"prior": "PAT123", "prior_issuer": "HOSP",
                                       "into": "GOOD1", "into_issuer": "HOSP"}]
    before = Dataset.from_json(entry.record["items"][0]["before"])
    assert before.PatientID == "PAT123"
    line = next(audit.lines(inbox.data_dir))
    assert line["action"] == "hl7.merge" and line["source"] == "10.1.1.1"
    assert {o["ParticipantObjectID"] for o in line["ParticipantObjectIdentification"]} == \
        {"PAT123", "GOOD1"}
    # The step completes meanwhile; the unmerge restores the patient, keeps COMPLETED.
    inbox.store.mark(item.id, status="COMPLETED")
    restored = inbox.unmerge(entry.id)
    assert restored["items"] == 1
    (item,) = inbox.store.items()
    assert (item.patient_id, item.patient_name, item.status) == \
        ("PAT123", "Müller^Hans^^Dr", "COMPLETED")
    assert inbox.log.get(entry.id).status == "UNDONE"
    assert next(audit.lines(inbox.data_dir))["action"] == "hl7.unmerge"
    with pytest.raises(ValueError):
        inbox.unmerge(entry.id)  # once


def test_a40_without_mrg_is_an_ae(inbox: Inbox) -> None:
    ack = inbox.receive(adt("A40", "PID|1||GOOD1||Good^Patient", cid="A40-2"))
    assert msa(ack)[1] == "AE"
    err = next(x for x in ack.decode().split("\r") if x.startswith("ERR")).split("|")
    assert err[2].startswith("MRG") and err[3].startswith("100^")


def _archive_patient(tmp_path: Path, patient_id: str, name: str) -> Study:
    study = Study(patient_id, name, "20260101", "ARCH1")
    archive = Archive(tmp_path)
    for path in write_study(study, tmp_path / "incoming"):
        assert archive.import_file(path).status == 0
    return study


def _archive_names(tmp_path: Path) -> dict[str, tuple[str, list[str]]]:
    index = Index(tmp_path / "index.sqlite")
    db = index._connect()
    return {pid: (name, [u for (u,) in db.execute(
        "SELECT study_uid FROM studies WHERE patient_pk = ?", (pk,))])
        for pk, pid, name in db.execute("SELECT pk, patient_id, patient_name FROM patients")}


def test_a08_updates_the_archive_patient_level(inbox: Inbox, tmp_path: Path) -> None:
    study = _archive_patient(tmp_path, "PAT123", "Muller^Hans")
    ack = inbox.receive(adt("A08", "PID|1||PAT123||Meier^Hanna||19650413|F", cid="A08-9"))
    assert msa(ack)[1] == "AA"
    assert _archive_names(tmp_path)["PAT123"] == ("Meier^Hanna", [study.study_uid])
    # A C-FIND at PATIENT level finds the new name and no longer the old one.
    index = Index(tmp_path / "index.sqlite")
    for name, found in (("Meier*", 1), ("Muller*", 0)):
        identifier = Dataset()
        identifier.PatientName = name
        identifier.PatientBirthDate = ""
        matches = list(index.query(Level.PATIENT, identifier))
        assert len(matches) == found
        if found:
            assert matches[0][0].PatientBirthDate == "19650413"
    record = inbox.log.entries()[0].record
    assert record["archive"] and json.loads(record["archive"][0]["before"])


def test_a40_moves_archive_studies_and_unmerge_moves_them_back(inbox: Inbox,
                                                                tmp_path: Path) -> None:
    study = _archive_patient(tmp_path, "PAT123", "Muller^Hans")
    ack = inbox.receive(adt("A40", "PID|1||GOOD1||Good^Patient", mrg="MRG|PAT123",
                            cid="A40-9"))
    assert msa(ack)[1] == "AA"
    names = _archive_names(tmp_path)
    assert study.study_uid in names["GOOD1"][1]
    assert "PAT123" not in names or not names["PAT123"][1]
    inbox.unmerge(inbox.log.entries()[0].id)
    names = _archive_names(tmp_path)
    assert study.study_uid in names["PAT123"][1]


def test_update_archive_off_leaves_the_archive_alone(tmp_path: Path) -> None:
    _archive_patient(tmp_path, "PAT123", "Muller^Hans")
    inbox = Inbox(tmp_path, replace(SETTINGS, update_archive=False))
    inbox.receive(orm())
    ack = inbox.receive(adt("A08", "PID|1||PAT123||Meier^Hanna", cid="A08-7"))
    assert msa(ack)[1] == "AA"
    assert inbox.store.items()[0].patient_name == "Meier^Hanna"
    assert _archive_names(tmp_path)["PAT123"][0] == "Muller^Hans"


def test_hl7_issuers_match_archive_rows_without_one(inbox: Inbox, tmp_path: Path) -> None:
    """The RIS names PID-3's assigning authority, the modality's instances do not."""
    study = _archive_patient(tmp_path, "PAT123", "Muller^Hans")
    good = _archive_patient(tmp_path, "GOOD1", "Good^Patient")
    ack = inbox.receive(adt("A08", "PID|1||PAT123^^^HOSP||Meier^Hanna", cid="A08-i"))
    assert msa(ack)[1] == "AA"
    assert _archive_names(tmp_path)["PAT123"][0] == "Meier^Hanna"
    ack = inbox.receive(adt("A40", "PID|1||GOOD1^^^HOSP||Good^Patient",
                            mrg="MRG|PAT123^^^HOSP", cid="A40-i"))
    assert msa(ack)[1] == "AA"
    names = _archive_names(tmp_path)
    assert set(names["GOOD1"][1]) == {study.study_uid, good.study_uid}  # the existing row
    assert "PAT123" not in names
    inbox.unmerge(inbox.log.entries()[0].id)
    assert _archive_names(tmp_path)["PAT123"][1] == [study.study_uid]


def test_the_unmerge_command(inbox: Inbox, capsys) -> None:
    """``printscp hl7 unmerge ID`` undoes an applied merge from its log record; a second
    time, or on an order, is one line and exit status 2."""
    from printscp.app.cli.main import main

    assert msa(inbox.receive(orm(cid="O1"), peer="ris"))[1] == "AA"
    assert msa(inbox.receive(adt("A40", "PID|1||GOOD1^^^HOSP||Good^Patient||19600101|M",
                                 mrg="MRG|PAT123^^^HOSP", cid="A40-9"), peer="ris"))[1] == "AA"
    merged = next(e for e in inbox.log.entries() if e.control_id == "A40-9")
    order = next(e for e in inbox.log.entries() if e.control_id == "O1")
    data = ["--data-dir", str(inbox.data_dir)]
    assert main(["hl7", "unmerge", *data, str(merged.id)]) == 0
    assert capsys.readouterr().out.startswith(f"{merged.id}: undone (")
    assert inbox.log.get(merged.id).status == "UNDONE"
    assert main(["hl7", "unmerge", *data, str(merged.id)]) == 2
    assert main(["hl7", "unmerge", *data, str(order.id)]) == 2
    assert "only an applied ADT update or merge is undone" in capsys.readouterr().err
