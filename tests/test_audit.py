"""The audit trail (issue 17 section 5): what a node's peers, its console and its command
line did, in the DICOM audit message vocabulary (PS3.15 A.5), as the files and
``printscp audit`` show it.

Real flows against a running node: DCMTK's storescu, findscu, getscu, movescu and
echoscu, a print session, a deletion from the console and the command line; then the
files themselves: whole-file rotation, two processes appending at once, ``enabled =
false``, a trail that cannot be written.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.archive_data import Study, write_study
from helpers.dcmtk import tool
from helpers.http import console_client
from helpers.net import free_port
from helpers.nodes import known_clients, make_node
from helpers.print_scu import PrintSCU

from printscp.core import audit, uids
from printscp.core.remote import RemoteAE

pytestmark = pytest.mark.slow  # most tests run a node

STUDY = Study("PAT-A", "DOE^JANE", "20250101", "ACC-A", series=2, images=2)
OTHER = Study("PAT-B", "ROE^RICHARD", "20250102", "ACC-B", series=1, images=1)


def lines_of(data_dir: Path) -> list[dict[str, Any]]:
    """Every line of every file of the trail, oldest first, once the writer is done."""
    audit.flush()
    return list(audit.lines(data_dir, newest_first=False))


def by_event(lines: list[dict[str, Any]], meaning: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["EventID"]["meaning"] == meaning]


def objects(line: dict[str, Any], role: int) -> list[str]:
    return [o["ParticipantObjectID"] for o in line.get("ParticipantObjectIdentification", [])
            if o["ParticipantObjectTypeCodeRole"] == role]


def wait_for(data_dir: Path, test, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The trail once ``test(lines)`` holds (lines of closing associations come from
    their threads)."""
    deadline = time.monotonic() + timeout
    while True:
        found = lines_of(data_dir)
        if test(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def run_audit_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "printscp", "audit", "--data-dir",
                           str(data_dir), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A node that received DCMTK storescu, findscu, getscu, movescu, a refused echoscu
    and a print session; its data folder and the move destination's port."""
    tmp = tmp_path_factory.mktemp("audit")
    move_port = free_port()
    node = make_node(tmp, "[access]\ncalling_ae_titles = [\"STORESCU\", \"FINDSCU\", "
                     "\"GETSCU\", \"MOVESCU\", \"TESTSCU\", \"ECHOSCU\"]\n",
                     remote=(RemoteAE("MOVESCU", "127.0.0.1", move_port),
                             *known_clients("FINDSCU", "GETSCU", "STORESCU")))
    files = write_study(STUDY, tmp / "a") + write_study(OTHER, tmp / "b")
    port = str(node.port)
    run = [tool("storescu"), "-aec", "PRINTSCP", "-aet", "STORESCU", "127.0.0.1", port,
           *map(str, files)]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([tool("findscu"), "-S", "-aec", "PRINTSCP", "-aet", "FINDSCU",
                           "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=PAT-A",
                           "-k", "StudyDate", "127.0.0.1", port],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = tmp / "got"
    got.mkdir()
    done = subprocess.run([tool("getscu"), "-S", "-aec", "PRINTSCP", "-aet", "GETSCU",
                           "-od", str(got), "-k", "QueryRetrieveLevel=STUDY",
                           "-k", f"StudyInstanceUID={STUDY.study_uid}", "127.0.0.1", port],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(got.iterdir())) == 4
    moved = tmp / "moved"
    moved.mkdir()
    done = subprocess.run([tool("movescu"), "-S", "-aec", "PRINTSCP", "-aet", "MOVESCU",
                           "-aem", "MOVESCU", "+P", str(move_port), "-od", str(moved),
                           "-k", "QueryRetrieveLevel=STUDY",
                           "-k", f"StudyInstanceUID={OTHER.study_uid}", "127.0.0.1", port],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(moved.iterdir())) == 1
    refused = subprocess.run([tool("echoscu"), "-aec", "PRINTSCP", "-aet", "INTRUDER",
                              "127.0.0.1", port], capture_output=True, text=True)
    assert refused.returncode != 0
    with PrintSCU(node.port) as scu:
        import numpy as np

        scu.film_session(FilmSessionLabel="AUDIT FILM")
        box, images, _ = scu.film_box("STANDARD\\1,1")
        assert scu.image(images[0], 1, np.zeros((64, 64), np.uint16), bits=12)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, box)[0].Status == 0
    node.spool.wait_idle()
    yield node, node.config.data_path
    node.stop()


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_storescu_gives_one_line_per_study_at_release(traffic):
    _, data = traffic
    found = wait_for(data, lambda x: len([y for y in x if y["action"] == "dicom.store"]) >= 2)
    stores = [x for x in found if x["action"] == "dicom.store"]
    assert {x["EventID"]["code"] for x in stores} == {"110104"}  # DICOM Instances Transferred
    by_study = {objects(x, 3)[0]: x for x in stores}
    assert set(by_study) == {STUDY.study_uid, OTHER.study_uid}
    line = by_study[STUDY.study_uid]
    assert line["instances"] == line["stored"] == 4
    assert line["EventActionCode"] == "C" and line["EventOutcomeIndicator"] == 0
    assert objects(line, 1) == ["PAT-A"]  # the patient
    [study] = [o for o in line["ParticipantObjectIdentification"]
               if o["ParticipantObjectTypeCodeRole"] == 3]
    assert sum(d["NumberOfInstances"] for d in study["ParticipantObjectDescription"]) == 4
    source, local = line["ActiveParticipant"]
    assert (source["UserID"], source["UserIsRequestor"], source["NetworkAccessPointID"],
            source["RoleIDCode"]["meaning"]) == ("STORESCU", True, "127.0.0.1",
                                                  "Source Role ID")
    assert (local["UserID"], local["UserIsRequestor"], local["RoleIDCode"]["code"]) == (
        "PRINTSCP", False, "110152")
    # The association's own line: who, from where, what it did.
    [entry] = [x for x in found if x["action"] == "association" and x["user"] == "STORESCU"]
    assert entry["EventID"]["meaning"] == "Network Entry"
    assert entry["operations"] == {"C-STORE": 5}
    assert entry["association"] == line["association"]


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_findscu_is_a_query_line_with_its_keys(traffic):
    _, data = traffic
    [query] = by_event(lines_of(data), "Query")
    assert (query["user"], query["source"], query["EventActionCode"]) == (
        "FINDSCU", "127.0.0.1", "E")
    [keys] = [o for o in query["ParticipantObjectIdentification"]
              if o["ParticipantObjectTypeCodeRole"] == 24]
    assert keys["ParticipantObjectID"] == "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root FIND
    assert keys["ParticipantObjectQuery"]["PatientID"] == "PAT-A"
    assert keys["ParticipantObjectQuery"]["QueryRetrieveLevel"] == "STUDY"
    assert "StudyDate" in keys["ParticipantObjectQuery"]  # a return key, by name
    assert objects(query, 1) == ["PAT-A"]


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_get_and_move_say_which_study_went_to_whom(traffic):
    _, data = traffic
    begun = by_event(lines_of(data), "Begin Transferring DICOM Instances")
    get = next(x for x in begun if x["action"] == "dicom.get")
    move = next(x for x in begun if x["action"] == "dicom.move")
    assert (objects(get, 3), objects(get, 1), get["instances"]) == (
        [STUDY.study_uid], ["PAT-A"], 4)
    assert get["destination"] == "GETSCU" and get["user"] == "GETSCU"
    assert (objects(move, 3), objects(move, 1), move["instances"]) == (
        [OTHER.study_uid], ["PAT-B"], 1)
    destination = [p for p in move["ActiveParticipant"]
                   if p.get("RoleIDCode", {}).get("code") == "110152"]
    assert [(p["UserID"], p["UserIsRequestor"]) for p in destination] == [("MOVESCU", False)]


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_a_refused_association_is_a_security_alert(traffic):
    _, data = traffic
    found = wait_for(data, lambda x: any(y["action"] == "association.reject" for y in x))
    [alert] = [x for x in found if x["action"] == "association.reject"]
    assert alert["EventID"]["code"] == "110113"
    assert alert["EventTypeCode"]["meaning"] == "Node Authentication"
    assert alert["EventOutcomeIndicator"] == 4
    assert alert["user"] == "INTRUDER" and alert["source"] == "127.0.0.1"
    assert "calling AE title not recognized" in alert["EventOutcomeDescription"]


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_a_print_job_is_spooled_then_exported(traffic):
    _, data = traffic
    found = wait_for(data, lambda x: any(y["action"] == "job.print" for y in x))
    [spooled] = [x for x in found if x["action"] == "job.spool"]
    [printed] = [x for x in found if x["action"] == "job.print"]
    assert spooled["EventID"]["meaning"] == "DICOM Instances Transferred"
    assert spooled["user"] == "TESTSCU" and spooled["label"] == "AUDIT FILM"
    assert printed["EventID"]["meaning"] == "Export" and printed["EventOutcomeIndicator"] == 0
    assert objects(printed, 20) == objects(spooled, 20) == [spooled["target"]]
    media = [p for p in printed["ActiveParticipant"]
             if p.get("RoleIDCode", {}).get("meaning") == "Destination Media"]
    assert len(media) == 1


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_node_start_is_application_activity(traffic):
    _, data = traffic
    [start] = by_event(lines_of(data), "Application Activity")
    assert start["EventTypeCode"]["meaning"] == "Application Start"
    launcher = start["ActiveParticipant"][0]
    assert launcher["RoleIDCode"]["meaning"] == "Application Launcher"


@pytest.mark.dcmtk("storescu", "findscu", "getscu", "movescu", "echoscu")
def test_console_deletion_and_printscp_audit_process(traffic, tmp_path):
    """A study deleted in the console is a DICOM Study Deleted line naming its patient
    and the user; ``printscp audit`` (a process) lists it by patient, as a table and as
    JSON, and its reading is recorded."""
    from printscp.http.app import create_app
    from printscp.http.context import Console

    node, data = traffic
    client = console_client(create_app(Console(node.config)))
    assert client.delete(f"/api/archive/studies/{OTHER.study_uid}").status_code == 200
    [deleted] = by_event(lines_of(data), "DICOM Study Deleted")
    assert (deleted["EventActionCode"], deleted["user"], objects(deleted, 3),
            objects(deleted, 1)) == ("D", "local", [OTHER.study_uid], ["PAT-B"])

    table = run_audit_cli(data, "--patient", "PAT-B")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split()[:3] == ["TIME", "(UTC)", "EVENT"]
    # newest first: the deletion, the move, the store of that study
    assert "DICOM Study Deleted" in rows[1] and "study.delete" in rows[1]
    assert any("dicom.move" in r for r in rows) and any("dicom.store" in r for r in rows)
    assert not any("PAT-A" in r for r in rows[1:-1])

    as_json = run_audit_cli(data, "--json", "--event", "Query", "--ae", "findscu")
    [line] = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert line["action"] == "dicom.find"
    since = run_audit_cli(data, "--json", "--since", "1h", "--event", "dicom.store")
    assert len(since.stdout.splitlines()) == 2
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert run_audit_cli(data, "--json", "--since", future).stdout == ""
    used = by_event(lines_of(data), "Audit Log Used")
    assert len(used) == 4 and used[-1]["shown"] == 0
    bad = run_audit_cli(data, "--since", "last tuesday")
    assert bad.returncode == 2 and "duration" in bad.stderr


def test_command_line_changes_are_recorded(tmp_path):
    """printscp worklist add/remove and printscp jobs (run as processes) leave their
    lines, with the operating-system user and the patient."""
    data = tmp_path / "data"
    cli = [sys.executable, "-m", "printscp"]
    add = subprocess.run([*cli, "worklist", "add", "--data-dir", str(data),
                          "--patient-name", "DOE^JANE", "--patient-id", "PAT-W",
                          "--accession", "ACC-W", "--modality", "CR",
                          "--procedure-description", "CHEST PA",
                          "--station-ae", "CR01"], capture_output=True, text=True)
    assert add.returncode == 0, add.stderr
    remove = subprocess.run([*cli, "worklist", "remove", "--data-dir", str(data),
                             "--accession", "ACC-W"], capture_output=True, text=True)
    assert remove.returncode == 0, remove.stderr
    job = subprocess.run([*cli, "jobs", "cancel", "--data-dir", str(data), "NOSUCHJOB"],
                         capture_output=True, text=True)
    assert job.returncode == 1
    found = list(audit.lines(data, newest_first=False))
    assert [(x["action"], x["EventID"]["meaning"], x["EventActionCode"], x["source"])
            for x in found] == [
        ("worklist.add", "Procedure Record", "C", "cli"),
        ("worklist.remove", "Procedure Record", "D", "cli"),
        ("job.cancel", "Order Record", "U", "cli")]
    assert objects(found[0], 1) == ["PAT-W"]
    assert found[2]["outcome"] == "not found" and found[2]["EventOutcomeIndicator"] == 4


def test_disabled_trail_writes_nothing(tmp_path):
    node = make_node(tmp_path, "[audit]\nenabled = false\n")
    try:
        files = write_study(OTHER, tmp_path / "s")
        done = subprocess.run([tool("storescu"), "-aec", "PRINTSCP", "127.0.0.1",
                               str(node.port), *map(str, files)], capture_output=True)
        assert done.returncode == 0
        audit.record(node.config.data_path, "study.delete", "1.2.3", user="ann")
    finally:
        node.stop()
    audit.flush()
    assert not (node.config.data_path / "audit" / "audit.jsonl").exists()


# -- the files -------------------------------------------------------------------------
_WRITER = """
import sys
from printscp.config.model import AuditConfig
from printscp.core import audit
audit.configure(sys.argv[1], AuditConfig(rotate_mb=1))
name, count = sys.argv[2], int(sys.argv[3])
pad = "x" * 700
for start in range(0, count, 4):
    lines = [audit.build(audit.AuditEvent.QUERY, 0, ae=name, word="test", seq=i, pad=pad)
             for i in range(start, min(start + 4, count))]
    assert audit.emit_lines(lines)
"""


def test_two_processes_rotating_lose_no_line_and_split_none(tmp_path):
    """Two processes append about 3 MiB at once, 1 MiB files: every line is whole and
    there exactly once, each closed file past 1 MiB and named by its rotation time."""
    data = tmp_path / "data"
    count = 1800
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(data), name, str(count)])
               for name in ("ONE", "TWO")]
    assert [w.wait(120) for w in writers] == [0, 0]
    paths = audit.files(data)
    assert len(paths) >= 3  # rotated at least twice
    seen: dict[str, list[int]] = {"ONE": [], "TWO": []}
    for path in paths:
        raw = path.read_bytes()
        assert raw.endswith(b"\n")
        for text in raw.splitlines():
            line = json.loads(text)  # never a split or interleaved line
            seen[line["user"]].append(line["seq"])
        if path.name != "audit.jsonl":
            assert audit.CLOSED_FILE.match(path.name)
            assert path.stat().st_size >= 1 << 20
    assert sorted(seen["ONE"]) == sorted(seen["TWO"]) == list(range(count))
    # each writer's lines in its order, across the files
    assert seen["ONE"] == list(range(count))
    newest = list(audit.lines(data))
    assert len(newest) == 2 * count and newest[0]["seq"] in (count - 1,)
    closed_mode = os.stat(paths[0]).st_mode & 0o777
    assert closed_mode == 0o640


def test_keep_days_removes_old_closed_files_only(tmp_path):
    from printscp.config.model import AuditConfig

    folder = tmp_path / "audit"
    folder.mkdir()
    old = folder / "audit-20000101T000000.jsonl"
    recent_stamp = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S")
    recent = folder / f"audit-{recent_stamp}.jsonl"
    current = folder / "audit.jsonl"
    for p in (old, recent, current):
        p.write_text("{}\n")
    audit.configure(tmp_path, AuditConfig(keep_days=1))
    assert not old.exists() and recent.exists() and current.exists()


def test_a_trail_that_cannot_be_written_never_raises_and_logs_once(tmp_path, caplog):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    audit.configure(blocker, None)
    with caplog.at_level(logging.ERROR, logger="printscp.audit"):
        for _ in range(3):
            assert audit.emit(audit.AuditEvent.QUERY, 0, ae="X") is None
        line = audit.record(blocker, "study.delete", "1.2.3", user="ann")
    assert line["action"] == "study.delete"
    assert len([r for r in caplog.records if "cannot write" in r.message]) == 1


def test_record_keeps_the_console_words_and_adds_the_standards():
    line = audit.build(audit.AuditEvent.USER_AUTHENTICATION, "failure",
                       type=audit.EventTypeCode.LOGIN, user="ann", host="10.0.0.9",
                       word="user.login")
    assert (line["action"], line["user"], line["source"], line["outcome"]) == (
        "user.login", "ann", "10.0.0.9", "failure")
    assert line["EventID"] == {"code": "110114", "scheme": "DCM",
                               "meaning": "User Authentication"}
    assert line["EventTypeCode"]["code"] == "110122"
    assert line["EventOutcomeIndicator"] == 4
    assert line["ActiveParticipant"][0]["UserIDTypeCode"]["meaning"] == "Person ID"
