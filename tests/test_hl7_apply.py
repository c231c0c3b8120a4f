r"""The HL7 inbox without the network: orders into the worklist, ACKs, the log.

Messages are shaped like those RISes send: v2.3.1 ORM with ZDS, v2.5.1 OMI with IPC,
escape sequences, repeated PID-3, Z segments, missing optional fields, ``\r\n``
separators, other delimiters.  The worklist is read back as the Modality Worklist SCP
reads it (:meth:`WorklistStore.query` with a C-FIND identifier).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from printscp.hl7.inbox import Inbox
from printscp.hl7.log import HL7Log
from printscp.hl7.messages import parse
from printscp.hl7.orders import derived_study_uid
from printscp.hl7.settings import Hl7Settings, OrderMapping
from printscp.worklist.items import WorklistStore

SETTINGS = Hl7Settings(mapping=OrderMapping(station_aes={"CT": "CT_ROOM1", "MR": "MR1"}))


def orm(control: str = "NW", *, cid: str = "MSG0001", accession: str = "ACC1001",
        zds: str = "1.2.826.0.1.3680043.9.7133.1001", name: str = "Müller^Hans^^^Dr",
        status: str = "", extra: str = "", sep: str = "\r", obr_extra: str = "") -> bytes:
    """An IHE RAD-4 ORM^O01 (HL7 v2.3.1) as a RIS sends it."""
    segments = [
        r"MSH|^~\&|RIS|RADIOLOGY|PRINTSCP|HOSP|20260301101500||ORM^O01|" + cid
        + "|P|2.3.1|||||DE|8859/1",
        "PID|1||PAT123^^^HOSP^MR~998877^^^NATIONAL||" + name + "||19650412|M|||"
        r"Hauptstr. 1^^Berlin^^10115^DE",
        "PV1|1|O|RAD^101^A|||||1234^Referrer^Rita^^^Dr|||||||||||V5566",
        f"ORC|{control}|PL9001|FL9001||{status}|||||||4567^Orderer^Otto",
        "OBR|1|PL9001|FL9001|CTHEAD^CT head w/o contrast^LOCAL|||20260301101000|||||||||"
        f"4567^Orderer^Otto||{accession}|RP1001|SPS1001||||CT|||^^^20260302083000^^R"
        "||||^headache \\T\\ nausea|||TECH1&Tech&Tina" + obr_extra,
        f"ZDS|{zds}^RIS^Application^DICOM" if zds else "",
        "ZXY|site specific|ignored",
        extra,
    ]
    return sep.join(s for s in segments if s).encode("latin-1") + sep.encode()


def query(store: WorklistStore, **keys: str) -> list[Dataset]:
    identifier = Dataset()
    for kw in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
               "RequestedProcedureID", "RequestedProcedureDescription",
               "ReferringPhysicianName", "PatientBirthDate", "PatientSex"):
        setattr(identifier, kw, keys.pop(kw, ""))
    step = Dataset()
    for kw in ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
               "ScheduledProcedureStepStartTime", "ScheduledProcedureStepID",
               "ScheduledPerformingPhysicianName", "ScheduledProcedureStepStatus"):
        setattr(step, kw, keys.pop(kw, ""))
    identifier.ScheduledProcedureStepSequence = [step]
    assert not keys
    return [ds for _, ds in store.query(identifier, include_done=True)]


def msa(ack: bytes) -> list[str]:
    lines = ack.decode("latin-1").split("\r")  # the fields looked at are ASCII
    return next(line for line in lines if line.startswith("MSA")).split("|")


def errs(ack: bytes) -> list[list[str]]:
    return [line.split("|") for line in ack.decode("latin-1").split("\r")
            if line.startswith("ERR")]


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path, SETTINGS)


def test_nw_creates_an_item_a_modality_finds(inbox: Inbox) -> None:
    ack = inbox.receive(orm(), peer="10.0.0.5")
    assert msa(ack)[:3] == ["MSA", "AA", "MSG0001"]
    header = ack.decode().split("\r")[0].split("|")
    # Sending and receiving swapped; ACK^O01^ACK; the message's version.
    assert header[2:6] == ["PRINTSCP", "HOSP", "RIS", "RADIOLOGY"]
    assert header[8] == "ACK^O01^ACK" and header[11] == "2.3.1"
    found = query(inbox.store, ScheduledStationAETitle="CT_ROOM1",
                  ScheduledProcedureStepStartDate="20260302", Modality="CT")
    assert len(found) == 1
    ds = found[0]
    assert ds.PatientName == "Müller^Hans^^Dr"  # Latin-1 per MSH-18; XPN prefix -> PN prefix
    assert ds.PatientID == "PAT123" and ds.IssuerOfPatientID == "HOSP"
    assert ds.OtherPatientIDsSequence[0].PatientID == "998877"
    assert ds.PatientBirthDate == "19650412" and ds.PatientSex == "M"
    assert ds.AccessionNumber == "ACC1001"
    assert ds.RequestedProcedureID == "RP1001"
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.9.7133.1001"
    assert ds.ReferringPhysicianName == "Referrer^Rita^^Dr"
    assert ds.RequestingPhysician == "Orderer^Otto"
    assert ds.AdmissionID == "V5566"
    assert ds.PlacerOrderNumberImagingServiceRequest == "PL9001"
    assert ds.FillerOrderNumberImagingServiceRequest == "FL9001"
    assert ds.RequestedProcedureDescription == "CT head w/o contrast"
    assert ds.RequestedProcedureCodeSequence[0].CodeValue == "CTHEAD"
    assert ds.RequestedProcedurePriority == "ROUTINE"
    assert ds.ReasonForTheRequestedProcedure == "headache & nausea"
    step = ds.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepID == "SPS1001"
    assert step.ScheduledProcedureStepStartDate == "20260302"
    assert step.ScheduledProcedureStepStartTime == "083000"
    assert step.ScheduledPerformingPhysicianName == "Tech^Tina"
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledProtocolCodeSequence[0].CodeMeaning == "CT head w/o contrast"
    # A modality's query by its own patient: wildcard on the name, as findscu sends it.
    assert len(query(inbox.store, PatientName="M*ller*")) == 1
    entry = inbox.log.entries()[0]
    assert (entry.status, entry.peer, entry.message_type, entry.control_id) == \
        ("AA", "10.0.0.5", "ORM^O01", "MSG0001")
    assert entry.ack == ack.decode()


def test_durable_before_the_ack(inbox: Inbox, tmp_path: Path) -> None:
    """What the ACK reports is committed: another connection (a process) sees it."""
    inbox.receive(orm())
    db = sqlite3.connect(tmp_path / "index.sqlite")
    assert db.execute("SELECT status FROM hl7_messages").fetchall() == [("AA",)]
    assert db.execute("SELECT sps_status FROM worklist_items").fetchall() == [("SCHEDULED",)]


def test_xo_updates_and_a_resent_order_hits_the_same_item(inbox: Inbox) -> None:
    inbox.receive(orm())
    ack = inbox.receive(orm("XO", cid="MSG0002", name="Mueller^Hans"))
    assert msa(ack)[1] == "AA"
    items = inbox.store.items()
    assert len(items) == 1 and items[0].patient_name == "Mueller^Hans"


def test_study_uid_derived_from_the_accession_without_zds(inbox: Inbox) -> None:
    inbox.receive(orm(zds=""))
    inbox.receive(orm("XO", zds="", cid="MSG0002", name="Other^Name"))
    items = inbox.store.items()
    assert len(items) == 1
    assert items[0].study_uid == derived_study_uid("ACC1001", "RP1001")
    assert items[0].patient_name == "Other^Name"


def test_ca_removes_a_scheduled_item(inbox: Inbox) -> None:
    inbox.receive(orm())
    ack = inbox.receive(orm("CA", cid="MSG0002"))
    assert msa(ack)[1] == "AA"
    assert inbox.store.count() == 0
    change = inbox.log.entries()[0].record["items"][0]
    assert change["action"] == "removed" and change["before"]


def test_dc_marks_discontinued(inbox: Inbox) -> None:
    inbox.receive(orm())
    assert msa(inbox.receive(orm("DC", cid="MSG0002")))[1] == "AA"
    assert [i.status for i in inbox.store.items()] == ["DISCONTINUED"]
    assert query(inbox.store, ScheduledStationAETitle="CT_ROOM1") != []  # include_done
    assert list(inbox.store.query(Dataset())) == []  # hidden from a default C-FIND


def test_cancel_of_a_step_in_progress_is_an_ae_that_changes_nothing(inbox: Inbox) -> None:
    inbox.receive(orm())
    inbox.store.mark(study_uid="1.2.826.0.1.3680043.9.7133.1001", sps_id="SPS1001",
                     status="IN PROGRESS")
    ack = inbox.receive(orm("CA", cid="MSG0002"))
    assert msa(ack)[1] == "AE"
    (err,) = errs(ack)
    assert err[2] == "ORC^1^1^1" and err[3] == "206^Application record locked^HL70357"
    assert err[4] == "E" and "STARTED" in err[8]
    assert [i.status for i in inbox.store.items()] == ["STARTED"]
    assert inbox.log.entries(status="AE")[0].control_id == "MSG0002"


def test_cancel_of_an_unknown_order_is_an_ae_204(inbox: Inbox) -> None:
    ack = inbox.receive(orm("CA", accession="NOPE"))
    assert msa(ack)[1] == "AE"
    assert errs(ack)[0][3].startswith("204^Unknown key identifier")


def test_sc_changes_the_status(inbox: Inbox) -> None:
    inbox.receive(orm())
    assert msa(inbox.receive(orm("SC", cid="MSG0002", status="IP")))[1] == "AA"
    assert [i.status for i in inbox.store.items()] == ["STARTED"]
    ack = inbox.receive(orm("SC", cid="MSG0003", status="ZZ"))
    assert errs(ack)[0][2] == "ORC^1^5^1" and errs(ack)[0][3].startswith("103^")


def test_a_message_sent_twice_is_applied_once(inbox: Inbox) -> None:
    first = inbox.receive(orm())
    inbox.store.mark(study_uid="1.2.826.0.1.3680043.9.7133.1001", sps_id="SPS1001",
                     status="COMPLETED")
    again = inbox.receive(orm())  # a re-applied NW would not touch the status anyway:
    assert again == first  # the ACK is the original's, byte for byte
    assert [i.status for i in inbox.store.items()] == ["COMPLETED"]
    statuses = [e.status for e in inbox.log.entries()]
    assert statuses == ["DUPLICATE", "AA"]
    # The same control id from another sending application is another message.
    other = orm(cid="MSG0001").replace(b"|RIS|RADIOLOGY|", b"|RIS2|RADIOLOGY|")
    assert msa(inbox.receive(other))[1] == "AA"


def test_crlf_separators_and_other_delimiters(inbox: Inbox) -> None:
    assert msa(inbox.receive(orm(sep="\r\n")))[1] == "AA"
    # Field separator # and component separator $ (declared in MSH-1/2).
    text = orm(cid="MSG0009", accession="ACC2", zds="1.2.3.4.2").decode("latin-1")
    text = text.replace("^", "$").replace("|", "#").replace("$~\\&", "$~\\&")
    ack = inbox.receive(text.encode("latin-1"))
    assert msa(ack)[1] == "AA", ack
    (ds,) = query(inbox.store, AccessionNumber="ACC2")
    assert ds.PatientName == "Müller^Hans^^Dr"
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT_ROOM1"


def test_missing_optional_fields(inbox: Inbox) -> None:
    msg = (br"MSH|^~\&|RIS||||20260301101500||ORM^O01|M7|P|2.3.1" b"\r"
           b"PID|||P7||Doe^Jane\r"
           b"ORC|NW\r"
           b"OBR|1|||XR^Chest||||||||||||||A7||||||CT\r")
    ack = inbox.receive(msg)
    assert msa(ack)[1] == "AA", ack
    (ds,) = query(inbox.store, AccessionNumber="A7")
    assert ds.RequestedProcedureID == "A7"
    step = ds.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepID == "A7"
    # No TQ/TQ1: scheduled at the order's time (MSH-7).
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == \
        ("20260301", "101500")
    assert "PatientBirthDate" not in ds


def test_several_obr_are_several_steps(inbox: Inbox) -> None:
    msg = (br"MSH|^~\&|RIS|R|||20260301||ORM^O01|M8|P|2.3.1" b"\r"
           b"PID|||P8||Roe^Rick\r"
           b"ORC|NW|PL8\r"
           b"OBR|1|PL8||CTH^CT head||||||||||||||A8|RP8|||||CT\r"
           b"ORC|NW|PL8\r"
           b"OBR|2|PL8||CTC^CT chest||||||||||||||A8|RP8|||||CT\r")
    assert msa(inbox.receive(msg))[1] == "AA"
    steps = sorted(i.sps_id for i in inbox.store.items())
    assert steps == ["RP8-1", "RP8-2"]
    assert len({i.study_uid for i in inbox.store.items()}) == 1


def test_omi_with_several_ipc(inbox: Inbox) -> None:
    msg = (br"MSH|^~\&|RIS|R|||20260301||OMI^O23^OMI_O23|M9|P|2.5.1" b"\r"
           b"PID|||P9^^^HOSP||Poe^Paula||19800101|F\r"
           b"PV1||O\r"
           b"ORC|NW|PL9|FL9\r"
           b"TQ1|||||||20260305140000||S\r"
           b"OBR|1|PL9|FL9|MRB^MR brain\r"
           b"IPC|A9|RP9|1.2.3.9|SPS9A|MR|MRB1^Brain T1^L|||MR_ROOM2\r"
           b"IPC|A9|RP9|1.2.3.9|SPS9B|MR|MRB2^Brain T2^L\r")
    ack = inbox.receive(msg)
    assert msa(ack)[1] == "AA", ack
    assert ack.decode().split("|")[8] == "ACK^O23^ACK"
    found = {d.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID: d
             for d in query(inbox.store, AccessionNumber="A9")}
    assert set(found) == {"SPS9A", "SPS9B"}
    a, b = found["SPS9A"], found["SPS9B"]
    assert a.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "MR_ROOM2"
    assert b.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "MR1"  # table
    assert b.ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription == "Brain T2"
    assert a.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "140000"
    assert a.RequestedProcedurePriority == "STAT"


def test_mapping_per_sending_application(tmp_path: Path) -> None:
    settings = Hl7Settings(mapping=OrderMapping(station_aes={"CT": "CT_ROOM1"}),
                           senders={"RIS": {"accession": ["OBR-3.1"],
                                            "station_ae": ["OBR-21"]}})
    inbox = Inbox(tmp_path, settings)
    ack = inbox.receive(orm(obr_extra="", accession="IGNORED").replace(
        b"|SPS1001||||CT|", b"|SPS1001|CT_ROOM9|||CT|"))
    assert msa(ack)[1] == "AA", ack
    (item,) = inbox.store.items()
    assert item.accession_number == "FL9001" and item.station_ae == "CT_ROOM9"
    with pytest.raises(ValueError, match="accesion"):
        Hl7Settings(senders={"X": {"accesion": ["OBR-3"]}})
    with pytest.raises(ValueError, match="field reference"):
        OrderMapping(accession=("OBR18",))


@pytest.mark.parametrize(("raw", "code", "where"), [
    (b"this is not HL7", "101", "MSH"),
    (b"MSH|^~|RIS|R|||2026||ORM^O01|X1|P|2.3.1\rPID|||1||A^B\r", "102", "MSH^1^2"),
    (b"MSH|^~\\&|RIS|R|||2026||ORU^R01|X2|P|2.3.1\r", "200", "MSH^1^9^1^1"),
    (b"MSH|^~\\&|RIS|R|||2026||ADT^A01|X3|P|2.3.1\r", "201", "MSH^1^9^1^2"),
    (b"MSH|^~\\&|RIS|R|||2026||ORM^O01|X4|P|3.0\r", "203", "MSH^1^12"),
    (b"MSH|^~\\&|RIS|R|||2026||ORM^O01||P|2.3.1\r", "101", "MSH^1^10"),
])
def test_rejected_messages_get_ar_naming_the_field(inbox: Inbox, raw: bytes, code: str,
                                                   where: str) -> None:
    ack = inbox.receive(raw, peer="x")
    assert msa(ack)[1] == "AR"
    (err,) = errs(ack)
    assert err[3].split("^")[0] == code and err[2].startswith(where), err
    assert inbox.log.entries(status="AR")[0].raw.startswith(raw.decode()[:10])
    assert inbox.store.count() == 0


@pytest.mark.parametrize(("change", "code", "where"), [
    (lambda m: m.replace(b"|CT|||^^^", b"||||^^^"), "101", "OBR^1^24"),       # no modality
    (lambda m: m.replace(b"ORC|NW|", b"ORC|ZZ|"), "103", "ORC^1^1"),          # order control
    (lambda m: m.replace(b"PAT123^^^HOSP^MR~998877^^^NATIONAL", b""), "101", "PID^1^3"),
    (lambda m: m.replace(b"|ACC1001|", b"|ACC1001ACC1001ACC1001|"), "102", "OBR^1^18"),
    (lambda m: m.replace(b"ZDS|1.2.826.0.1.3680043.9.7133.1001", b"ZDS|1.2.03.x"), "102",
     "ZDS^1^1"),
    (lambda m: m.replace(b"|19650412|", b"|19651312|"), "102", "PID^1^7"),
    (lambda m: m.replace(b"^^^20260302083000^^R", b"^^^20260232083000^^R"), "102",
     "OBR^1^27^1^4"),
])
def test_application_errors_get_ae_naming_the_field(inbox: Inbox, change, code: str,
                                                    where: str) -> None:
    ack = inbox.receive(change(orm()))
    assert msa(ack)[1] == "AE", ack
    (err,) = errs(ack)
    assert err[3].split("^")[0] == code and err[2].startswith(where), err
    assert inbox.store.count() == 0


def test_no_station_for_the_modality_is_an_ae(tmp_path: Path) -> None:
    ack = Inbox(tmp_path).receive(orm())
    assert msa(ack)[1] == "AE" and "[hl7.stations]" in errs(ack)[0][8]


def test_replay_applies_again_and_logs(inbox: Inbox) -> None:
    inbox.receive(orm())
    inbox.store.remove(sps_ids=["SPS1001"])
    first_id = inbox.log.entries()[0].id
    ack = inbox.replay(first_id)
    assert msa(ack)[1] == "AA" and inbox.store.count() == 1
    replayed = inbox.log.entries()[0]
    assert replayed.original_id == first_id and replayed.peer == "replay"
    # The replay is not the original a duplicate answers with.
    assert inbox.receive(orm()) == inbox.log.get(first_id).ack.encode()


def test_log_queries(inbox: Inbox) -> None:
    inbox.receive(orm())
    inbox.receive(b"garbage")
    log = HL7Log.for_data_dir(inbox.data_dir)
    assert [e.status for e in log.entries()] == ["AR", "AA"]
    assert [e.status for e in log.entries(status="aa")] == ["AA"]
    assert len(log.entries(limit=1)) == 1
    assert log.entries(since="2999-01-01T00:00:00") == []
    assert len(log.entries(since="2000-01-01")) == 2
    assert [e.control_id for e in log.entries(message_type="ORM")] == ["MSG0001"]
    with pytest.raises(ValueError):
        log.entries(status="nonsense")


def test_escapes_repetitions_and_components_are_parsed_by_the_library() -> None:
    p = parse(rb"MSH|^~\&|A|B|||2026||ORM^O01|1|P|2.5" b"\r"
              b"NTE|1||a\\F\\b\\T\\c\\R\\d\\E\\e\\X41\\\r"
              b"PID|||1^^^X&1.2.3&ISO~2^^^Y\r")
    nte, pid = p.first("NTE"), p.first("PID")
    assert p.value(nte, 3) == "a|b&c~d\\eA"
    assert p.value(pid, 3, 4, 2) == "1.2.3" and p.value(pid, 3, 1, 1, 2) == "2"
    assert p.value(pid, 40) == "" and p.value(pid, 3, 9) == ""


def test_settings_as_the_config_section_builds_them(tmp_path: Path) -> None:
    """``[hl7.stations]`` and ``[hl7.senders.NAME]`` with ``*_field = "SEG-N"`` keys."""
    settings = Hl7Settings(stations={"CT": "CT01"},
                           senders={"RIS": {"accession_field": "ORC-3.1"}})
    assert settings.mapping_for("RIS").accession == ("ORC-3.1",)
    assert settings.mapping_for("RIS").station_aes["CT"] == "CT01"
    assert settings.mapping_for("OTHER").accession[0] == "OBR-18"
    inbox = Inbox(tmp_path, settings)
    assert msa(inbox.receive(orm()))[1] == "AA"
    (item,) = inbox.store.items()
    assert (item.accession_number, item.station_ae) == ("FL9001", "CT01")
    with pytest.raises(ValueError, match=r"senders\[RIS\].*OBR"):
        Hl7Settings(senders={"RIS": {"accession_field": "OBR"}})
    with pytest.raises(ValueError, match="stations"):
        Hl7Settings(stations={"CT": "A" * 17})


def test_the_same_message_on_two_connections_at_once_is_applied_once(tmp_path: Path) -> None:
    """Two connections (threads, each its own Inbox as MLLP workers would have) deliver
    one message at the same moment: one applies it, the other gets its ACK."""
    import threading

    inboxes = [Inbox(tmp_path, SETTINGS) for _ in range(4)]
    barrier = threading.Barrier(len(inboxes))
    acks: list[bytes] = []

    def send(inbox: Inbox) -> None:
        barrier.wait()
        acks.append(inbox.receive(orm()))

    threads = [threading.Thread(target=send, args=(i,)) for i in inboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(acks)) == 1 and msa(acks[0])[1] == "AA"
    statuses = sorted(e.status for e in inboxes[0].log.entries())
    assert statuses == ["AA", "DUPLICATE", "DUPLICATE", "DUPLICATE"]


def test_orders_per_second(inbox: Inbox) -> None:
    """A figure for the report (not a goal): NW orders applied with their ACKs."""
    import time

    n = 200
    start = time.perf_counter()
    for i in range(n):
        ack = inbox.receive(orm(cid=f"P{i}", accession=f"A{i}", zds=f"1.2.3.{i}"))
        assert b"MSA|AA|" in ack
    rate = n / (time.perf_counter() - start)
    print(f"\nHL7 inbox: {rate:.0f} orders/s (NW, durable, in process)")
    assert inbox.store.count() == n


def test_utf8_per_msh18_and_framing_left_on_the_message(inbox: Inbox) -> None:
    raw = b"\x0b" + orm(accession="U1", zds="1.2.3.77").replace(
        b"|DE|8859/1", b"|JP|UNICODE UTF-8").replace(
        "Müller^Hans".encode("latin-1"), "山田^太郎".encode()) + b"\x1c\r"
    ack = inbox.receive(raw)
    assert msa(ack)[1] == "AA", ack
    assert ack.decode("utf-8").split("\r")[0].endswith("|UNICODE UTF-8")
    (ds,) = query(inbox.store, AccessionNumber="U1")
    assert str(ds.PatientName) == "山田^太郎^^Dr"
    assert ds.SpecificCharacterSet == "ISO_IR 192"  # the store says how it is encoded


@pytest.mark.parametrize(("change", "ack_code", "err_code", "where"), [
    (lambda m: m.replace(b"\rPID|", b"\rpid|"), "AR", "100", "pid^2"),
    (lambda m: m.replace(b"\rORC|NW|PL9001|FL9001||", b"\rNTE|1|"), "AE", "100", "OBR^1"),
    (lambda m: m.replace(b"\rPID|", b"\rPXD|"), "AE", "100", "PID"),
])
def test_segment_errors(inbox: Inbox, change, ack_code: str, err_code: str,
                        where: str) -> None:
    ack = inbox.receive(change(orm()))
    assert msa(ack)[1] == ack_code, ack
    (err,) = errs(ack)
    assert err[3].split("^")[0] == err_code and err[2].startswith(where), err


def test_a_reused_control_id_with_another_message_is_applied(inbox: Inbox) -> None:
    """RISes reset their counters: same MSH-10, different order -> not a duplicate."""
    first = inbox.receive(orm())
    second = inbox.receive(orm(accession="ACC2002", zds="1.2.3.2002"))
    assert msa(second)[1] == "AA" and second != first
    assert inbox.store.count() == 2
    newest = inbox.log.entries()[0]
    assert newest.status == "AA" and "already used by" in (newest.error or "")
    # A retransmission of the second is still a duplicate of the second.
    assert inbox.receive(orm(accession="ACC2002", zds="1.2.3.2002")) == second


def test_the_legal_name_of_several(inbox: Inbox) -> None:
    msg = orm(name="Alias^Al^^^^^A~Legal^Lena^^^^^L")
    assert msa(inbox.receive(msg))[1] == "AA"
    assert inbox.store.items()[0].patient_name == "Legal^Lena"


def test_whatever_a_peer_sends_gets_an_ack(tmp_path: Path) -> None:
    """Mangled messages (cut, bytes flipped, delimiters swapped) never raise."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    inbox = Inbox(tmp_path, SETTINGS)
    base = orm()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(base)), st.binary(max_size=8), st.integers(0, len(base)))
    def mangle(cut: int, junk: bytes, at: int) -> None:
        raw = (base[:at] + junk + base[at:])[:max(cut, 1)]
        ack = inbox.receive(raw)
        assert ack.startswith(b"MSH|^~\\&|") and msa(ack)[1] in ("AA", "AE", "AR")

    mangle()
