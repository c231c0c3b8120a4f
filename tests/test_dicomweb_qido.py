"""QIDO-RS (PS3.18 10.6) over the console's ASGI app: the archive's C-FIND matching
behind /dicom-web/studies, /series and /instances, in DICOM JSON."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.archive_data import CT_IMAGE, Study, instance
from helpers.http import console_client
from helpers.nodes import node_config
from PIL import Image

from printscp.archive.documents import ENCAPSULATED_PDF, store_document
from printscp.archive.films import film_instance
from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.http.dicomweb.multipart import DICOM_JSON
from printscp.http.dicomweb.qido import FUZZY_WARNING


def store(console: Console, study: Study) -> list[str]:
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


def film_pdf(pages: int = 2) -> bytes:
    """A PDF of ``pages`` grey pages, as the node's films are."""
    images = [Image.new("L", (200, 250), 40 * (i + 1)) for i in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=50)
    return out.getvalue()


def store_printed_film(console: Console, pdf: bytes) -> str:
    """A printed job's film stored as the spool stores it; its SOP Instance UID."""
    job = {"print_job_uid": "1.2.826.0.1.3680043.10.543.77", "calling_ae": "CT1",
           "created": datetime(2026, 12, 1, 9, 30, tzinfo=UTC).isoformat(), "session": {}}
    ds, _ = film_instance(pdf, job, console.archive)
    store_document(console.archive, ds, "CT1", "film")
    return str(ds.SOPInstanceUID)


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(node_config(tmp_path))


@pytest.fixture
def client(console: Console):
    return console_client(create_app(console))


@pytest.fixture
def studies(console: Console) -> dict[str, Study]:
    out = {
        "smith": Study("P1", "SMITH^JOHN", "20240105", "ACC1", series=2, images=3),
        "smythe": Study("P2", "SMYTHE^ANNA", "20240131", "ACC2", modality="MR"),
        "jones": Study("P3", "JONES^BOB", "20240201", "ACC3", description="HEAD"),
    }
    for study in out.values():
        store(console, study)
    return out


def values(body: list[dict], tag: str) -> list:
    return sorted(item[tag]["Value"][0] if "Value" in item.get(tag, {}) else None
                  for item in body)


def test_all_studies_with_default_attributes(client, studies):
    response = client.get("/dicom-web/studies")
    assert response.status_code == 200
    assert response.headers["content-type"] == DICOM_JSON
    body = response.json()
    assert values(body, "00080050") == ["ACC1", "ACC2", "ACC3"]
    smith = next(s for s in body if s["00080050"]["Value"] == ["ACC1"])
    # PS3.18 Table 10.6.3-3: patient and study attributes, the counts, the modalities
    assert smith["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "SMITH^JOHN"}]}
    assert smith["00201206"]["Value"] == [2] and smith["00201208"]["Value"] == [6]
    assert smith["00080061"]["Value"] == ["CT"]
    assert smith["00080056"]["Value"] == ["ONLINE"]
    assert smith["00081190"]["Value"][0].endswith(
        f"/dicom-web/studies/{studies['smith'].study_uid}")
    assert "00080060" not in smith and "0020000E" not in smith  # not study attributes
    assert smith["00080201"] == {"vr": "SH"}  # Timezone Offset: none, sent empty (Type 2)


@pytest.mark.parametrize(("query", "expected"), [
    ("PatientID=P1", ["ACC1"]),
    ("00100020=P2", ["ACC2"]),  # a tag instead of a keyword
    ("PatientName=SM*", ["ACC1", "ACC2"]),  # wildcard, as C-FIND
    ("PatientName=sm*", ["ACC1", "ACC2"]),  # PN matching ignores case (as the C-FIND SCP)
    ("PatientName=SMIT?^*", ["ACC1"]),
    ("StudyDate=20240101-20240131", ["ACC1", "ACC2"]),  # date range, inclusive
    ("StudyDate=20240201-", ["ACC3"]),
    ("ModalitiesInStudy=MR", ["ACC2"]),
    ("AccessionNumber=ACC3&StudyDescription=HEAD", ["ACC3"]),
    ("PatientID=P1&StudyDate=20240201", []),
])
def test_study_matching(client, studies, query, expected):
    response = client.get(f"/dicom-web/studies?{query}")
    if not expected:
        assert response.status_code == 204 and response.content == b""
        return
    assert response.status_code == 200
    assert values(response.json(), "00080050") == expected


def test_uid_list_matching(client, studies):
    uids = f"{studies['smith'].study_uid},{studies['jones'].study_uid}"
    body = client.get(f"/dicom-web/studies?StudyInstanceUID={uids}").json()
    assert values(body, "00080050") == ["ACC1", "ACC3"]


def test_includefield_and_all(client, studies):
    body = client.get("/dicom-web/studies?PatientID=P3&includefield=StudyDescription,"
                      "00080090").json()
    [study] = body
    assert study["00081030"]["Value"] == ["HEAD"]
    assert study["00080090"]["Value"] == [{"Alphabetic": "WHO^CARES"}]
    every = client.get("/dicom-web/instances?PatientID=P3&includefield=all").json()[0]
    assert every["00280010"]["Value"] == [16]  # Rows
    assert every["00080008"]["Value"] == ["ORIGINAL", "PRIMARY", "AXIAL"]  # not a default
    assert every["00100010"] and every["0020000D"]  # and the levels above


def test_limit_and_offset(client, studies):
    full = client.get("/dicom-web/instances?PatientID=P1").json()
    assert len(full) == 6
    uids = [i["00080018"]["Value"][0] for i in full]
    page = client.get("/dicom-web/instances?PatientID=P1&limit=2&offset=3").json()
    assert [i["00080018"]["Value"][0] for i in page] == uids[3:5]
    assert client.get("/dicom-web/instances?PatientID=P1&offset=6").status_code == 204


def test_series_and_instances_of_a_study(client, studies):
    smith = studies["smith"]
    series = client.get(f"/dicom-web/studies/{smith.study_uid}/series").json()
    assert values(series, "0020000E") == sorted(smith.series_uids)
    assert all(s["00201209"]["Value"] == [3] for s in series)
    assert "00100010" not in series[0]  # only series attributes (Table 10.6.3-4)
    ct = client.get(f"/dicom-web/studies/{smith.study_uid}/series?Modality=CT&SeriesNumber=2"
                    ).json()
    assert values(ct, "0020000E") == [smith.series_uids[1]]
    instances = client.get(f"/dicom-web/studies/{smith.study_uid}/series/"
                           f"{smith.series_uids[0]}/instances").json()
    assert len(instances) == 3
    assert {i["00080016"]["Value"][0] for i in instances} == {CT_IMAGE}
    assert values(instances, "00200013") == [1, 2, 3]
    url = instances[0]["00081190"]["Value"][0]
    assert f"/series/{smith.series_uids[0]}/instances/" in url
    assert len(client.get(f"/dicom-web/studies/{smith.study_uid}/instances").json()) == 6


def test_all_series_carry_study_attributes(client, studies):
    body = client.get("/dicom-web/series?Modality=MR").json()
    [mr] = body
    assert mr["00100020"]["Value"] == ["P2"] and mr["00080060"]["Value"] == ["MR"]


@pytest.mark.parametrize(("query", "field"), [
    ("NoSuchKeyword=1", "query.NoSuchKeyword"),
    ("limit=0", "query.limit"),
    ("limit=x", "query.limit"),
    ("offset=-1", "query.offset"),
    ("includefield=Bogus", "query.includefield"),
    ("fuzzymatching=maybe", "query.fuzzymatching"),
    ("Rows=many", "query.Rows"),
])
def test_bad_parameter_is_400_naming_it(client, studies, query, field):
    response = client.get(f"/dicom-web/studies?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_fuzzymatching_warns_and_matches_literally(client, studies):
    response = client.get("/dicom-web/studies?PatientName=SMITH^JON&fuzzymatching=true")
    assert response.status_code == 204  # literal matching: no SMITH^JON
    assert response.headers["warning"] == FUZZY_WARNING
    ok = client.get("/dicom-web/studies?PatientName=SMITH*&fuzzymatching=false")
    assert ok.status_code == 200 and "warning" not in ok.headers


def test_printed_film_found_as_doc(client, console, studies):
    sop = store_printed_film(console, film_pdf())
    [study] = client.get("/dicom-web/studies?ModalitiesInStudy=DOC").json()
    assert study["00080061"]["Value"] == ["DOC"]
    [doc] = client.get("/dicom-web/instances?Modality=DOC").json()
    assert doc["00080018"]["Value"] == [sop]
    assert doc["00080016"]["Value"] == [ENCAPSULATED_PDF]


def test_same_rights_as_the_api(console, studies, tmp_path):
    from printscp.http.users import Role, UserStore
    store = UserStore(console.data_dir)
    store.add("ann", Role.VIEWER, "correct horse battery")
    _, token = store.new_token("ann")
    client = console_client(create_app(console))
    assert client.get("/dicom-web/studies").status_code == 401
    assert client.get("/api/archive/studies").status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/dicom-web/studies", headers=bearer).status_code == 200


def test_query_is_audited(client, console, studies):
    audit.configure(console.data_dir)
    try:
        client.get("/dicom-web/studies?PatientID=P1")
        audit.flush()
        lines = [x for x in audit.read(console.data_dir) if x["action"] == "dicomweb.qido"]
    finally:
        audit.configure(console.data_dir, None)
    [line] = lines
    assert line["EventID"]["meaning"] == "Query" and line["user"] == "local"
    query = line["ParticipantObjectIdentification"][-1]["ParticipantObjectQuery"]
    assert query == {"PatientID": "P1"}


@pytest.mark.parametrize(("host", "server", "extra", "expected"), [
    ("node:8042", ("10.0.0.1", 8042), {}, "http://node:8042/dicom-web"),
    # dicomweb-client sends its host name alone: the port the request came in on
    ("127.0.0.1", ("127.0.0.1", 8042), {}, "http://127.0.0.1:8042/dicom-web"),
    ("pacs.example", ("127.0.0.1", 8042), {"x-forwarded-for": "1.2.3.4"},
     "http://pacs.example/dicom-web"),  # a proxy's Host is the public one
    ("node", ("10.0.0.1", 80), {}, "http://node/dicom-web"),
])
def test_base_url_of_retrieve_and_bulk_data_uris(host, server, extra, expected):
    from starlette.requests import Request

    from printscp.http.dicomweb.qido import base_url
    headers = [(b"host", host.encode())] + [(k.encode(), v.encode()) for k, v in extra.items()]
    scope = {"type": "http", "scheme": "http", "server": server, "path": "/dicom-web/studies",
             "root_path": "", "query_string": b"", "headers": headers}
    assert base_url(Request(scope)) == expected


def test_more_than_a_response_holds_warns(client, studies, monkeypatch):
    from printscp.http.dicomweb import qido
    monkeypatch.setattr(qido, "MAX_RESULTS", 4)
    response = client.get("/dicom-web/instances")
    assert len(response.json()) == 4 and response.headers["warning"] == qido.MORE_WARNING
    exact = client.get("/dicom-web/instances?limit=3")
    assert len(exact.json()) == 3 and "warning" not in exact.headers
    rest = client.get("/dicom-web/instances?offset=4")
    assert len(rest.json()) == 4  # 10 instances in all: 4 more, then 2
    assert len(client.get("/dicom-web/instances?offset=8").json()) == 2
