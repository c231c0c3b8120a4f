"""The archive API: what an administrator browsing, downloading and deleting sees."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from helpers.archive_data import Study, instance
from helpers.http import console_client
from helpers.nodes import node_config
from PIL import Image

from printscp.archive import browse
from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console


def store(console: Console, study: Study) -> list[str]:
    """Store every instance of ``study`` in the console's archive; their SOP UIDs."""
    uids = []
    for s in range(study.series):
        for n in range(1, study.images + 1):
            ds = instance(study, s, n)
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            outcome = console.archive.receive(out.getvalue(), ds.SOPClassUID,
                                              ds.SOPInstanceUID, "MODALITY")
            assert outcome.status == 0, outcome.comment
            uids.append(str(ds.SOPInstanceUID))
    return uids


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(node_config(tmp_path))


@pytest.fixture
def client(console: Console) -> TestClient:
    return console_client(create_app(console))


@pytest.fixture
def studies(console: Console) -> dict[str, Study]:
    out = {
        "doe": Study("P1", "DOE^JANE", "20240105", "ACC1", series=2, images=3),
        "roe": Study("P2", "ROE^RICHARD", "20240310", "ACC2", modality="MR"),
        "doe2": Study("P1", "DOE^JANE", "20231224", "ACC3", description="HEAD"),
    }
    for study in out.values():
        store(console, study)
    return out


def test_studies_newest_first_with_counts(client, studies):
    body = client.get("/api/archive/studies").json()
    assert body["total"] == 3
    assert [s["accession_number"] for s in body["items"]] == ["ACC2", "ACC1", "ACC3"]
    doe = body["items"][1]
    assert doe["patient_name"] == "DOE^JANE"  # as sent, not the folded column
    assert (doe["series"], doe["instances"], doe["modalities"]) == (2, 6, ["CT"])
    assert doe["bytes"] > 6 * 16 * 16 * 2
    assert doe["links"]["zip"].endswith(".zip")


@pytest.mark.parametrize(("query", "expected"), [
    ("patient_id=P1", ["ACC1", "ACC3"]),
    ("patient_name=doe", ["ACC1", "ACC3"]),
    ("modality=MR", ["ACC2"]),
    ("since=2024-01-01&until=2024-02-01", ["ACC1"]),
    ("q=head", ["ACC3"]),
    ("q=ACC2", ["ACC2"]),
])
def test_study_filters(client, studies, query, expected):
    body = client.get(f"/api/archive/studies?{query}").json()
    assert [s["accession_number"] for s in body["items"]] == expected


def test_paging(client, studies):
    first = client.get("/api/archive/studies?limit=2").json()
    second = client.get("/api/archive/studies?limit=2&offset=2").json()
    assert first["total"] == second["total"] == 3
    assert [len(first["items"]), len(second["items"])] == [2, 1]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "query.limit"), ("limit=100000", "query.limit"),
    ("since=yesterday", "query.since"), ("since=2024-02-01&until=2024-01-01", "query.since"),
])
def test_bad_query_names_the_field(client, query, field):
    answer = client.get(f"/api/archive/studies?{query}")
    assert answer.status_code == 400
    assert answer.json()["field"] == field


def test_patients_with_counts(client, studies):
    body = client.get("/api/archive/patients").json()
    assert [(p["patient_id"], p["studies"], p["instances"]) for p in body["items"]] == [
        ("P1", 2, 8), ("P2", 1, 2)]
    assert client.get("/api/archive/patients?q=roe").json()["total"] == 1


def test_series_of_a_study(client, studies):
    uid = studies["doe"].study_uid
    body = client.get(f"/api/archive/studies/{uid}/series").json()
    assert [(s["series_number"], s["instances"], s["modality"]) for s in body["items"]] == [
        ("1", 3, "CT"), ("2", 3, "CT")]
    assert body["items"][0]["first_stored"] <= body["items"][0]["last_stored"]
    one = client.get(f"/api/archive/studies/{uid}").json()
    assert one["patient_id"] == "P1" and len(one["series_list"]) == 2
    assert client.get("/api/archive/studies/1.2.3/series").status_code == 404


def test_thumbnail_is_a_small_png_and_cached(client, console, studies):
    series_uid = studies["doe"].series_uids[0]
    answer = client.get(f"/api/archive/series/{series_uid}/thumbnail.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.size == (16, 16)  # never enlarged
    cached = list((console.data_dir / "previews" / "series").glob(f"{series_uid}.*.png"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    assert client.get(f"/api/archive/series/{series_uid}/thumbnail.png").content \
        == answer.content
    assert cached[0].stat().st_mtime_ns == before
    assert client.get(f"/api/archive/series/{series_uid}/thumbnail.png?size=99"
                      ).json()["field"] == "query.size"
    assert client.get("/api/archive/series/1.2.3/thumbnail.png").status_code == 404


def test_thumbnail_of_a_large_image_fits_the_size(console, tmp_path):
    study = Study("P9", "BIG^ONE", "20240101", "ACC9", size=600, images=1)
    store(console, study)
    path = browse.series_thumbnail(console.archive, study.series_uids[0], 128)
    assert Image.open(path).size == (128, 128)


def test_instance_download_is_the_stored_file(client, console, studies):
    uid = store(console, Study("P3", "X^Y", "20240101", "ACC4", images=1))[0]
    answer = client.get(f"/api/archive/instances/{uid}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/dicom"
    assert pydicom.dcmread(io.BytesIO(answer.content)).SOPInstanceUID == uid
    assert client.get("/api/archive/instances/1.2.3").status_code == 404


def test_study_zip_holds_every_instance(client, studies):
    study = studies["doe"]
    answer = client.get(f"/api/archive/studies/{study.study_uid}.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        names = zf.namelist()
        assert len(names) == 6 and zf.testzip() is None
        ds = pydicom.dcmread(io.BytesIO(zf.read(names[0])))
    assert ds.StudyInstanceUID == study.study_uid
    assert client.get("/api/archive/studies/1.2.3.zip").status_code == 404


def test_delete_study_from_index_and_disk_audited(client, console, studies):
    study = studies["doe"]
    client.get(f"/api/archive/series/{study.series_uids[0]}/thumbnail.png")
    folder = console.data_dir / "archive" / study.study_uid
    assert folder.is_dir()
    answer = client.delete(f"/api/archive/studies/{study.study_uid}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"]["instances"] == 6
    assert not folder.exists()
    assert not list((console.data_dir / "previews" / "series").glob(
        f"{study.series_uids[0]}.*"))
    assert client.get(f"/api/archive/studies/{study.study_uid}").status_code == 404
    assert client.get("/api/archive/studies").json()["total"] == 2
    # the patient keeps their other study; a second delete is a 404
    assert client.get("/api/archive/patients?q=P1").json()["items"][0]["studies"] == 1
    assert client.delete(f"/api/archive/studies/{study.study_uid}").status_code == 404
    [line] = audit.read(console.data_dir)
    assert (line["action"], line["target"], line["user"], line["instances"]) == (
        "study.delete", study.study_uid, "local", 6)
    # the archive stays whole: verify finds no orphan, nothing bad
    report = console.archive.verify()
    assert (report.checked, report.bad, report.orphans) == (4, [], [])


def test_deleted_study_can_be_stored_again(client, console, studies):
    study = studies["roe"]
    client.delete(f"/api/archive/studies/{study.study_uid}")
    store(console, study)
    assert client.get(f"/api/archive/studies/{study.study_uid}").json()["instances"] == 2


def test_a_receiving_process_stores_a_study_the_console_deleted(client, console, studies):
    """Another process (a worker) remembers the deleted study's rows: its next store of
    that study writes them again instead of failing on the missing rows."""
    from printscp.archive.archive import Archive

    worker = Archive(console.data_dir)
    study = studies["roe"]
    ds = instance(study, 0, 1)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert worker.receive(out.getvalue(), ds.SOPClassUID, ds.SOPInstanceUID, "M").status == 0
    assert client.delete(f"/api/archive/studies/{study.study_uid}").status_code == 200
    assert worker.receive(out.getvalue(), ds.SOPClassUID, ds.SOPInstanceUID, "M").status == 0
    assert client.get(f"/api/archive/studies/{study.study_uid}").json()["instances"] == 1


def test_delete_with_disabled_archive_is_404(tmp_path):
    config = node_config(tmp_path, "[archive]\nenabled = false\n")
    client = console_client(create_app(Console(config)))
    assert client.get("/api/archive/studies").status_code == 404
    assert "disabled" in client.get("/api/archive/studies").json()["error"]


@pytest.mark.slow
def test_fifty_thousand_instances_list(console):
    """500 studies of 100 instances (benchmarks/console.py times such lists): the first
    page and a filtered page count right."""
    db = console.archive.index
    with db._write() as conn:
        for p in range(100):
            conn.execute("INSERT INTO patients (patient_key, patient_id, patient_name, attrs)"
                         " VALUES (?, ?, ?, ?)", (f"P{p}\\", f"P{p}", f"name{p}", "{}"))
        for s in range(500):
            conn.execute("INSERT INTO studies (patient_pk, study_uid, study_date, attrs)"
                         " VALUES (?, ?, ?, ?)", (s % 100 + 1, f"1.2.{s}",
                                                  f"2024{s % 12 + 1:02d}01", json.dumps({})))
            conn.execute("INSERT INTO series (study_pk, series_uid, modality, attrs)"
                         " VALUES (?, ?, ?, ?)", (s + 1, f"1.3.{s}", "CT", "{}"))
        conn.executemany(
            "INSERT INTO instances (series_pk, sop_uid, sop_class_uid, transfer_syntax, path,"
            " size, sha256, stored_at, attrs) VALUES (?, ?, '1.2', '1.2', 'x', 1000, '', '', '{}')",
            [(n // 100 + 1, f"1.4.{n}") for n in range(50000)])
    for filters in (browse.StudyFilter(), browse.StudyFilter(modality="CT", patient_name="NAME1")):
        items, total = browse.studies(console.archive, filters)
        assert items and items[0]["instances"] == 100
    items, total = browse.patients(console.archive)
    assert total == 100 and items[0]["instances"] == 500
