"""DICOMweb against a client we did not write: ``dicomweb-client`` (the Python reference
client) talking to a real node (DICOM listener and the console's uvicorn server on free
loopback ports), and DCMTK on the DIMSE side of the same archive: what one side stores
the other retrieves with the same pixel data, byte for byte."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from helpers.archive_data import Study, instance, write_study
from helpers.browser import ConsoleNode, console_node
from helpers.dcmtk import tool
from helpers.nodes import known_clients

from printscp.http.users import UserStore

dicomweb_client = pytest.importorskip("dicomweb_client")

pytestmark = pytest.mark.slow  # a node and its console

STUDY = Study("DW1", "WEB^CLIENT", "20250301", "ACCDW1", series=2, images=2, size=32)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ConsoleNode]:
    with console_node(tmp_path / "node", remote=known_clients()) as served:
        yield served


@pytest.fixture
def client(node: ConsoleNode):
    """A client with an admin's API token, as a script would hold one."""
    store = UserStore(node.console.data_dir)
    store.add("scripts", "admin", "a long enough password")
    _, token = store.new_token("scripts", "tests")
    return dicomweb_client.DICOMwebClient(f"{node.url}/dicom-web",
                                          headers={"Authorization": f"Bearer {token}"})


def datasets(study: Study = STUDY) -> list[pydicom.Dataset]:
    out = []
    for s in range(study.series):
        for n in range(1, study.images + 1):
            ds = instance(study, s, n)
            ds.PixelData = bytes((i * 7 + n) % 251 for i in range(len(ds.PixelData)))
            out.append(ds)
    return out


def test_store_then_search_and_retrieve(client):
    sent = datasets()
    response = client.store_instances(sent)
    referenced = response.ReferencedSOPSequence
    assert [str(i.ReferencedSOPInstanceUID) for i in referenced] == \
        [str(d.SOPInstanceUID) for d in sent]
    assert "FailedSOPSequence" not in response
    assert all(str(i.RetrieveURL).endswith(str(i.ReferencedSOPInstanceUID))
               for i in referenced)

    [study] = client.search_for_studies(search_filters={"PatientID": "DW1"})
    assert study["0020000D"]["Value"] == [STUDY.study_uid]
    series = client.search_for_series(STUDY.study_uid)
    assert sorted(s["0020000E"]["Value"][0] for s in series) == sorted(STUDY.series_uids)
    instances = client.search_for_instances(STUDY.study_uid, STUDY.series_uids[0])
    assert len(instances) == STUDY.images

    first = sent[0]
    got = client.retrieve_instance(STUDY.study_uid, first.SeriesInstanceUID,
                                   first.SOPInstanceUID)
    assert got.PixelData == first.PixelData and got.PatientName == "WEB^CLIENT"
    metadata = client.retrieve_study_metadata(STUDY.study_uid)
    assert len(metadata) == len(sent)
    assert {m["00080018"]["Value"][0] for m in metadata} == {str(d.SOPInstanceUID)
                                                              for d in sent}
    png = client.retrieve_instance_rendered(STUDY.study_uid, first.SeriesInstanceUID,
                                            first.SOPInstanceUID,
                                            media_types=("image/png",))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_store_into_another_study_is_refused(client):
    sent = datasets()[:1]
    other = Study("DW2", "OTHER^P", "20250302", "ACCDW2")
    with pytest.raises(Exception) as refused:  # 409: none stored (requests' HTTPError)
        client.store_instances(sent, study_instance_uid=other.study_uid)
    assert "409" in str(refused.value)


@pytest.mark.dcmtk("storescu")
def test_dimse_store_then_wado_rs_has_the_same_pixel_data(node, client, tmp_path):
    files = write_study(STUDY, tmp_path / "sent")
    done = subprocess.run([tool("storescu"), "-aec", "PRINTSCP", "127.0.0.1",
                           str(node.port), *map(str, files)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for path in files:
        sent = pydicom.dcmread(path)
        got = client.retrieve_instance(str(sent.StudyInstanceUID),
                                       str(sent.SeriesInstanceUID),
                                       str(sent.SOPInstanceUID))
        assert got.PixelData == sent.PixelData


@pytest.mark.dcmtk("getscu")
def test_stow_rs_then_c_get_has_the_same_pixel_data(node, client, tmp_path):
    sent = {str(d.SOPInstanceUID): d for d in datasets()}
    client.store_instances(list(sent.values()))
    out = tmp_path / "got"
    out.mkdir()
    done = subprocess.run([tool("getscu"), "-S", "-aet", "GETSCU", "-aec", "PRINTSCP",
                           "-k", "QueryRetrieveLevel=STUDY",
                           "-k", f"StudyInstanceUID={STUDY.study_uid}", "-od", str(out),
                           "127.0.0.1", str(node.port)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    got = [pydicom.dcmread(p) for p in out.iterdir()]
    assert len(got) == len(sent)
    for ds in got:
        assert ds.PixelData == sent[str(ds.SOPInstanceUID)].PixelData


def test_stow_rs_files_are_stored_as_sent(node, client):
    """What the archive keeps is the client's Part 10 encoding of the data set."""
    ds = datasets()[0]
    client.store_instances([ds])
    archive = node.console.archive
    stored = pydicom.dcmread(archive.path_of(archive.index.instance(str(ds.SOPInstanceUID))))
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert stored.PixelData == ds.PixelData
    assert stored.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
