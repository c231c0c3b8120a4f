"""STOW-RS (PS3.18 10.5): stored as a C-STORE stores, answered with the standard's
statuses and Store Instances Response Module."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from helpers.archive_data import Study, instance
from helpers.http import console_client
from helpers.nodes import node_config

from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.http.dicomweb import stow
from printscp.http.users import UserStore

BOUNDARY = "printscp-test-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
STUDY = Study("P1", "DOE^JANE", "20240105", "ACC1", series=2, images=2)


def part10(study: Study = STUDY, series: int = 0, number: int = 1, **changes) -> bytes:
    ds = instance(study, series, number)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def multipart(*files: bytes, boundary: str = BOUNDARY) -> bytes:
    out = [b"preamble, ignored\r\n"]
    for data in files:
        out += [b"--", boundary.encode(), b"\r\nContent-Type: application/dicom\r\n\r\n",
                data, b"\r\n"]
    out += [b"--", boundary.encode(), b"--\r\n"]
    return b"".join(out)


def app_of(console: Console):
    return create_app(console)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    console = Console(node_config(tmp_path))
    audit.configure(console.data_dir)
    yield console
    audit.flush()


@pytest.fixture
def client(console: Console) -> TestClient:
    return console_client(app_of(console))


def post(client: TestClient, body: bytes, path: str = "/dicom-web/studies",
         content_type: str = CONTENT_TYPE, **headers: str):
    return client.post(path, content=body, headers={"Content-Type": content_type, **headers})


def uids(data: bytes) -> tuple[str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)


def test_all_stored_200_with_retrieve_urls_and_the_files_as_sent(client, console):
    files = [part10(series=s, number=n) for s in range(2) for n in (1, 2)]
    response = post(client, multipart(*files))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    body = response.json()
    assert "00081198" not in body
    base = "http://testserver/dicom-web"
    assert body["00081190"] == {"vr": "UR", "Value": [f"{base}/studies/{STUDY.study_uid}"]}
    items = body["00081199"]["Value"]
    assert len(items) == 4
    for data, item in zip(files, items, strict=True):
        sop, series = uids(data)
        assert item["00081155"]["Value"] == [sop]
        assert item["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]
        assert item["00081190"]["Value"] == [
            f"{base}/studies/{STUDY.study_uid}/series/{series}/instances/{sop}"]
        record = console.archive.index.instance(sop)
        assert console.archive.path_of(record).read_bytes() == data  # no transcoding


def test_study_in_the_url_must_match_each_instance(client, console):
    other = Study("P2", "ROE^R", "20240106", "ACC2")
    good, bad = part10(), part10(other)
    response = post(client, multipart(good, bad), f"/dicom-web/studies/{STUDY.study_uid}")
    assert response.status_code == 202
    body = response.json()
    [failed] = body["00081198"]["Value"]
    assert failed["00081155"]["Value"] == [uids(bad)[0]]
    assert failed["00081197"] == {"vr": "US", "Value": [0xA900]}
    assert [i["00081155"]["Value"] for i in body["00081199"]["Value"]] == [[uids(good)[0]]]
    assert console.archive.index.instance(uids(bad)[0]) is None


def test_none_stored_is_409_with_the_c_store_status(client, console):
    ds = instance(STUDY, 0, 1)
    ds.Rows = 4096  # Pixel Data too short for what the module declares: 0xA900
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    truncated = out.getvalue()
    response = post(client, multipart(truncated, b"not dicom at all"))
    assert response.status_code == 409
    failed = response.json()["00081198"]["Value"]
    assert [f["00081197"]["Value"][0] for f in failed] == [0xA900, 0xC000]
    assert "00081199" not in response.json()


def test_over_the_limit_is_refused_out_of_resources(tmp_path):
    config = node_config(tmp_path, "[limits]\nmax_dataset_mb = 1\n")
    console = Console(config)
    client = console_client(app_of(console))
    big = instance(STUDY, 0, 1, rows=1024)  # 2 MiB of pixels
    out = io.BytesIO()
    big.save_as(out, enforce_file_format=True)
    response = post(client, multipart(out.getvalue(), part10(number=2)))
    assert response.status_code == 202
    [failed] = response.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xA700]


@pytest.mark.parametrize("content_type", [
    "application/dicom",
    'multipart/related; type="application/dicom+json"; boundary=x',
    "application/json",
])
def test_other_media_types_415(client, content_type):
    assert post(client, multipart(part10()), content_type=content_type).status_code == 415


def test_malformed_body_400(client):
    assert post(client, b"no boundary anywhere").status_code == 400
    no_boundary = 'multipart/related; type="application/dicom"'
    assert post(client, multipart(part10()), content_type=no_boundary).status_code == 400
    cut = multipart(part10())[:-40]  # no closing delimiter
    assert post(client, cut).status_code == 400


def test_accept_other_than_dicom_json_406(client):
    response = post(client, multipart(part10()), accept="application/dicom+xml")
    assert response.status_code == 406


def test_quoted_boundary_and_chunked_stream(client):
    boundary = "a;b=c 1"
    body = multipart(part10(), boundary=boundary)

    def chunks():
        for i in range(0, len(body), 7):  # delimiters split across reads
            yield body[i:i + 7]

    response = client.post("/dicom-web/studies", content=chunks(), headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary="{boundary}"'})
    assert response.status_code == 200, response.text


def test_audited_as_a_c_store(client, console):
    post(client, multipart(part10(), part10(number=2)))
    audit.flush()
    stores = [x for x in audit.lines(console.data_dir) if x.get("action") == "dicom.store"]
    [line] = stores
    assert line["EventID"]["code"] == "110104"  # DICOM Instances Transferred
    assert line["stored"] == 2 and line["target"] == STUDY.study_uid
    assert line["ActiveParticipant"][0]["UserID"] == "local"


def test_needs_an_admin(console, tmp_path):
    store = UserStore(console.data_dir)
    store.add("viewer1", "viewer", "correct horse battery")
    store.add("admin1", "admin", "correct horse battery")
    _, viewer_token = store.new_token("viewer1")
    _, admin_token = store.new_token("admin1")
    app = app_of(console)
    client = TestClient(app)
    body = multipart(part10())
    assert post(client, body).status_code == 403  # no CSRF token, no bearer
    assert post(console_client(app), body).status_code == 401  # nobody signed in
    assert post(client, body, authorization=f"Bearer {viewer_token}").status_code == 403
    assert post(client, body, authorization=f"Bearer {admin_token}").status_code == 200


def test_parser_keeps_one_part():
    """The parser yields each part as soon as its delimiter arrives."""
    from helpers.net import run_coroutine

    body = multipart(b"A" * 100, b"B" * 50)
    seen: list[int] = []

    async def stream():
        for i in range(0, len(body), 3):
            seen.append(i)
            yield body[i:i + 3]

    async def collect():
        return [(p.data, len(seen)) async for p in stow.parts(stream(), BOUNDARY, 1 << 20)]

    got = run_coroutine(collect())
    assert [d for d, _ in got] == [b"A" * 100, b"B" * 50]
    assert got[0][1] < len(range(0, len(body), 3))  # before the body ended


def test_a_data_set_written_without_preamble_is_stored_as_part_10(client, console):
    """pydicom writes a data set never read from a file with its File Meta Information
    but neither preamble nor group length: what dicomweb-client sends for one."""
    ds = instance(STUDY, 0, 1)
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds)
    assert out.getvalue()[:2] == b"\x02\x00"
    response = post(client, multipart(out.getvalue()))
    assert response.status_code == 200, response.text
    stored = console.archive.path_of(console.archive.index.instance(str(ds.SOPInstanceUID)))
    again = pydicom.dcmread(stored)
    assert again.preamble == bytes(128) and again.PixelData == ds.PixelData
