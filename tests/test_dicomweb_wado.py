"""WADO-RS (PS3.18 10.4) over the console's ASGI app: instances byte for byte, metadata
with BulkDataURIs, frames, rendered images and a printed film's PDF."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers.archive_data import Study, instance
from helpers.http import console_client
from helpers.nodes import node_config
from PIL import Image
from pydicom.encaps import encapsulate
from test_dicomweb_qido import film_pdf, store, store_printed_film

from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.http.dicomweb.multipart import parse_accept, split_related

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(node_config(tmp_path))


@pytest.fixture
def client(console: Console):
    return console_client(create_app(console))


@pytest.fixture
def study(console: Console) -> Study:
    study = Study("P1", "SMITH^JOHN", "20240105", "ACC1", series=2, images=2)
    store(console, study)
    return study


def records(console: Console, study: Study) -> list:
    return [r for r in console.archive.instances() if r.study_uid == study.study_uid]


def url_of(record) -> str:
    return (f"/dicom-web/studies/{record.study_uid}/series/{record.series_uid}"
            f"/instances/{record.sop_uid}")


def parts(response) -> list[tuple[dict[str, str], bytes]]:
    return split_related(response.content, response.headers["content-type"])


def receive(console: Console, ds: pydicom.Dataset) -> pydicom.Dataset:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    outcome = console.archive.receive(out.getvalue(), ds.SOPClassUID, ds.SOPInstanceUID, "X")
    assert outcome.status == 0, outcome.comment
    return ds


def test_instance_is_the_stored_file_byte_for_byte(client, console, study):
    record = records(console, study)[0]
    response = client.get(url_of(record), headers={
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"; boundary=')
    [(headers, body)] = parts(response)
    assert headers["content-type"] == ("application/dicom; transfer-syntax="
                                       "1.2.840.10008.1.2.1")
    assert body == console.archive.path_of(record).read_bytes()


def test_study_and_series_are_every_file(client, console, study):
    stored = {console.archive.path_of(r).read_bytes() for r in records(console, study)}
    response = client.get(f"/dicom-web/studies/{study.study_uid}")
    assert {body for _, body in parts(response)} == stored and len(stored) == 4
    series = client.get(f"/dicom-web/studies/{study.study_uid}/series/{study.series_uids[1]}")
    assert len(parts(series)) == 2


@pytest.mark.parametrize(("accept", "status"), [
    ('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1', 200),
    ('multipart/related; type="application/dicom"', 200),
    ("*/*", 200),
    ('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
     406),
    ("image/png", 406),
    ('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50, '
     'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5', 200),
])
def test_transfer_syntax_negotiation(client, console, study, accept, status):
    response = client.get(url_of(records(console, study)[0]), headers={"Accept": accept})
    assert response.status_code == status


def test_implicit_little_endian_given_as_stored_or_explicit(client, console):
    study = Study("P7", "IMPLICIT^IVY", "20240303", "ACC7")
    ds = instance(study, 0, 1)
    ds.file_meta.TransferSyntaxUID = IMPLICIT_LE
    receive(console, ds)
    record = console.archive.index.instance(str(ds.SOPInstanceUID))
    assert record.transfer_syntax == IMPLICIT_LE
    stored = client.get(url_of(record), headers={
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    [(headers, body)] = parts(stored)
    assert headers["content-type"].endswith(f"transfer-syntax={IMPLICIT_LE}")
    assert body == console.archive.path_of(record).read_bytes()
    explicit = client.get(url_of(record), headers={
        "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}'})
    [(headers, body)] = parts(explicit)
    assert headers["content-type"].endswith(f"transfer-syntax={EXPLICIT_LE}")
    again = pydicom.dcmread(io.BytesIO(body))
    assert again.file_meta.TransferSyntaxUID == EXPLICIT_LE and not again.is_implicit_VR
    assert again.PixelData == ds.PixelData and again.PatientName == "IMPLICIT^IVY"


def test_unknown_resources_are_404(client, console, study):
    record = records(console, study)[0]
    assert client.get("/dicom-web/studies/1.2.3").status_code == 404
    assert client.get(f"/dicom-web/studies/{study.study_uid}/series/1.2.3/instances/"
                      f"{record.sop_uid}").status_code == 404


def test_metadata_json_with_bulk_data_uris(client, console, study):
    record = records(console, study)[0]
    response = client.get(url_of(record) + "/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    [meta] = response.json()
    assert meta["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "SMITH^JOHN"}]}
    assert meta["00280010"] == {"vr": "US", "Value": [16]}
    assert "00020010" not in meta  # no File Meta Information
    pixel = meta["7FE00010"]
    assert pixel["vr"] == "OW" and "Value" not in pixel and "InlineBinary" not in pixel
    uri = pixel["BulkDataURI"]
    assert uri.startswith("http://") and uri.endswith(url_of(record) + "/bulkdata/7FE00010")
    bulk = client.get(uri)
    [(headers, body)] = parts(bulk)
    assert headers["content-type"].startswith("application/octet-stream")
    assert body == pydicom.dcmread(console.archive.path_of(record)).PixelData
    every = client.get(f"/dicom-web/studies/{study.study_uid}/metadata").json()
    assert len(every) == 4


def test_frames_of_an_uncompressed_ct_are_its_pixel_bytes(client, console):
    study = Study("P9", "MULTI^FRAME", "20240301", "ACC9", size=8)
    ds = instance(study, 0, 1)
    frames = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8) * 17
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    receive(console, ds)
    base = (f"/dicom-web/studies/{study.study_uid}/series/{study.series_uids[0]}"
            f"/instances/{ds.SOPInstanceUID}")
    response = client.get(base + "/frames/3,1")
    assert response.status_code == 200
    assert 'type="application/octet-stream"' in response.headers["content-type"]
    got = parts(response)
    assert [body for _, body in got] == [frames[2].tobytes(), frames[0].tobytes()]
    assert got[0][0]["content-type"] == ("application/octet-stream; "
                                         "transfer-syntax=1.2.840.10008.1.2.1")
    assert client.get(base + "/frames/4").status_code == 404
    assert client.get(base + "/frames/x").status_code == 400
    assert client.get(base + "/frames/1", headers={"Accept": "image/jpeg"}).status_code == 406


def test_compressed_frames_as_stored_or_406(client, console):
    study = Study("P8", "JPEG^JANE", "20240302", "ACC8", size=8)
    ds = instance(study, 0, 1)
    jpeg = io.BytesIO()
    Image.new("L", (8, 8), 128).save(jpeg, "JPEG")
    ds.file_meta.TransferSyntaxUID = JPEG_BASELINE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = encapsulate([jpeg.getvalue()])
    ds["PixelData"].VR = "OB"
    receive(console, ds)
    base = (f"/dicom-web/studies/{study.study_uid}/series/{study.series_uids[0]}"
            f"/instances/{ds.SOPInstanceUID}")
    response = client.get(base + "/frames/1", headers={
        "Accept": 'multipart/related; type="image/jpeg"'})
    [(headers, body)] = parts(response)
    assert headers["content-type"] == f"image/jpeg; transfer-syntax={JPEG_BASELINE}"
    assert body == jpeg.getvalue()
    decoded = client.get(base + "/frames/1", headers={
        "Accept": 'multipart/related; type="application/octet-stream"'})
    [(headers, body)] = parts(decoded)  # decompressed, pydicom decoding with Pillow
    assert headers["content-type"] == ("application/octet-stream; "
                                       "transfer-syntax=1.2.840.10008.1.2.1")
    assert len(body) == 64 and abs(int(np.frombuffer(body, np.uint8).mean()) - 128) <= 2
    assert client.get(base + "/frames/1", headers={
        "Accept": 'multipart/related; type="image/jls"'}).status_code == 406
    png = client.get(base + "/rendered?window=128,256", headers={"Accept": "image/png"})
    shown = np.asarray(Image.open(io.BytesIO(png.content)))  # a compressed image rendered
    assert abs(int(shown.mean()) - 128) <= 2
    [meta] = client.get(base + "/metadata").json()
    assert meta["7FE00010"]["vr"] == "OB"


def windowed(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 to 0..255, computed here independently."""
    y = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.clip(y, 0, 255)).astype(np.uint8)


def test_rendered_png_is_the_windowed_pixels(client, console, study):
    record = records(console, study)[0]
    ds = pydicom.dcmread(console.archive.path_of(record))
    response = client.get(url_of(record) + "/rendered?window=2000,1000",
                          headers={"Accept": "image/png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(got, windowed(ds.pixel_array.astype(np.float64), 2000, 1000))
    # the data set's own window, and MONOCHROME1 inverted, and rescale applied
    ds2 = instance(study, 0, 7)
    ds2.WindowCenter, ds2.WindowWidth = 500, 300
    ds2.RescaleSlope, ds2.RescaleIntercept = 2, -1000
    ds2.PhotometricInterpretation = "MONOCHROME1"
    receive(console, ds2)
    url = (f"/dicom-web/studies/{study.study_uid}/series/{study.series_uids[0]}/instances/"
           f"{ds2.SOPInstanceUID}/rendered")
    got = np.asarray(Image.open(io.BytesIO(client.get(url, headers={
        "Accept": "image/png"}).content)))
    values = ds2.pixel_array.astype(np.float64) * 2 - 1000
    assert np.array_equal(got, 255 - windowed(values, 500, 300))


def test_rendered_through_the_data_sets_voi_lut(client, console, study):
    ds = instance(study, 1, 9)
    item = pydicom.Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new("LUTData", "US", (4095 - np.arange(4096, dtype=np.uint16)).tolist())  # inverts
    ds.VOILUTSequence = [item]
    receive(console, ds)
    url = (f"/dicom-web/studies/{study.study_uid}/series/{study.series_uids[1]}/instances/"
           f"{ds.SOPInstanceUID}/rendered")
    got = np.asarray(Image.open(io.BytesIO(client.get(url, headers={
        "Accept": "image/png"}).content)))
    expected = np.rint((4095 - ds.pixel_array.astype(np.float64)) * 255 / 4095)
    assert np.array_equal(got, expected.astype(np.uint8))


def test_rendered_jpeg_viewport_and_parameters(client, console, study):
    url = url_of(records(console, study)[0]) + "/rendered"
    response = client.get(url + "?viewport=64,32&quality=80")
    assert response.headers["content-type"] == "image/jpeg"  # the default
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.size == (32, 32)  # fits, keeping its aspect
    frame = client.get(url.replace("/rendered", "/frames/1/rendered"),
                       headers={"Accept": "image/png"})
    assert Image.open(io.BytesIO(frame.content)).size == (16, 16)
    for bad in ("window=1", "window=1,0", "window=1,2,cubic", "viewport=0,5", "quality=0"):
        response = client.get(f"{url}?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["field"] == "query." + bad.split("=")[0]
    assert client.get(url, headers={"Accept": "application/pdf"}).status_code == 406


def test_printed_film_as_pdf_and_png_pages(client, console):
    pdf = film_pdf(pages=2)
    sop = store_printed_film(console, pdf)
    record = console.archive.index.instance(sop)
    url = url_of(record)
    response = client.get(url + "/rendered")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == pdf
    png = client.get(url + "/frames/2/rendered", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    page = np.asarray(Image.open(io.BytesIO(png.content)).convert("L"))
    assert page.shape[0] > page.shape[1] and abs(int(page.mean()) - 80) <= 2  # page 2
    every = client.get(url + "/rendered", headers={
        "Accept": 'multipart/related; type="image/png"'})
    assert [h["content-type"] for h, _ in parts(every)] == ["image/png", "image/png"]
    assert client.get(url + "/frames/3/rendered",
                      headers={"Accept": "image/png"}).status_code == 404
    [meta] = client.get(url + "/metadata").json()
    assert "BulkDataURI" in meta["00420011"]  # Encapsulated Document
    [(_, doc)] = parts(client.get(meta["00420011"]["BulkDataURI"]))
    assert doc.rstrip(b"\0") == pdf


def test_accept_parsing():
    ranges = parse_accept('image/png;q=0.5, multipart/related; type="application/dicom";'
                          ' transfer-syntax=*, text/html;q=0')
    assert [r.media_type for r in ranges] == ["multipart/related", "image/png"]
    assert ranges[0].related_type == "application/dicom" and ranges[0].transfer_syntax == "*"


def test_retrieve_is_audited(client, console, study):
    audit.configure(console.data_dir)
    try:
        client.get(f"/dicom-web/studies/{study.study_uid}")
        audit.flush()
        lines = [x for x in audit.read(console.data_dir) if x["action"] == "dicomweb.wado"]
    finally:
        audit.configure(console.data_dir, None)
    [line] = lines
    assert line["EventID"]["meaning"] == "Begin Transferring DICOM Instances"
    assert line["target"] == study.study_uid and line["instances"] == 4
    assert json.dumps(line)  # serialisable as written
