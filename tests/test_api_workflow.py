"""The workflow API: worklist items, MPPS steps, storage commitment requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.http import console_client
from helpers.mpps import create_ds
from helpers.nodes import node_config

from printscp.archive import browse
from printscp.archive.commitment import Commitment, CommitmentStore
from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console

ITEM = {"patient_name": "DOE^JANE", "patient_id": "P1234", "accession": "A1001",
        "procedure_description": "CHEST PA", "modality": "CR", "station_ae": "CR01",
        "start_date": "2024-05-01", "start_time": "09:30"}


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(node_config(tmp_path))


@pytest.fixture
def client(console: Console) -> TestClient:
    return console_client(create_app(console))


def test_add_list_and_remove_an_item(client, console):
    answer = client.post("/api/workflow/worklist", json=ITEM)
    assert answer.status_code == 201, answer.text
    [item] = answer.json()["items"]
    assert (item["patient_name"], item["accession_number"], item["modality"],
            item["start_date"], item["start_time"][:6], item["status"]) == (
        "DOE^JANE", "A1001", "CR", "20240501", "093000", "SCHEDULED")
    listed = client.get("/api/workflow/worklist").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == item["id"]
    assert client.get("/api/workflow/worklist?status=completed").json()["total"] == 0
    assert client.delete(f"/api/workflow/worklist/{item['id']}").json() == {"removed": 1}
    assert client.get("/api/workflow/worklist").json()["total"] == 0
    assert client.delete(f"/api/workflow/worklist/{item['id']}").status_code == 404
    actions = [(a["action"], a["user"]) for a in audit.read(console.data_dir)]
    assert actions == [("worklist.remove", "local"), ("worklist.add", "local")]


def test_item_as_dicom_json(client):
    from printscp.worklist.importing import build_item

    ds = build_item({k: v for k, v in ITEM.items()})
    answer = client.post("/api/workflow/worklist", json=ds.to_json_dict())
    assert answer.status_code == 201, answer.text
    assert answer.json()["items"][0]["station_ae"] == "CR01"


@pytest.mark.parametrize(("change", "field"), [
    ({"patient_name": None}, "body.patient_name"),
    ({"modality": ""}, "body.modality"),
    ({"start_date": "2024-13-45"}, "body.start_date"),
    ({"sex": "X"}, "body.sex"),
    ({"priority": "SOON"}, "body.priority"),
    ({"colour": "blue"}, "body.colour"),
    ({"procedure_code": "nonsense"}, "body.procedure_code"),
])
def test_bad_item_is_400_naming_the_field_and_not_stored(client, change, field):
    body = {**ITEM, **change}
    answer = client.post("/api/workflow/worklist", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field, answer.json()
    assert client.get("/api/workflow/worklist").json()["total"] == 0


def test_bad_dicom_json_item_names_the_attribute(client):
    from printscp.worklist.importing import build_item

    ds = build_item(dict(ITEM))
    del ds.PatientID
    answer = client.post("/api/workflow/worklist", json=ds.to_json_dict())
    assert answer.status_code == 400 and answer.json()["field"] == "body.PatientID"


def test_worklist_disabled(tmp_path):
    config = node_config(tmp_path, "[worklist]\nenabled = false\n")
    client = console_client(create_app(Console(config)))
    assert client.get("/api/workflow/worklist").status_code == 404
    assert client.post("/api/workflow/worklist", json=ITEM).status_code == 404


def test_mpps_steps_with_state_and_completeness(client, console):
    console.mpps.create("1.2.3.100", create_ds(), calling_ae="CT1")
    second = create_ds(PerformedProcedureStepStartDate="20240502")
    console.mpps.create("1.2.3.101", second, calling_ae="CT1")

    def complete(ds):
        ds.PerformedProcedureStepStatus = "COMPLETED"
        return ds

    console.mpps.update("1.2.3.101", complete)
    body = client.get("/api/workflow/mpps").json()
    assert body["total"] == 2
    assert [(s["uid"], s["status"]) for s in body["items"]] == [
        ("1.2.3.101", "COMPLETED"), ("1.2.3.100", "IN PROGRESS")]
    assert body["items"][1]["accession_number"] == "ACC1"
    assert body["items"][1]["instances_expected"] == 0
    assert client.get("/api/workflow/mpps?status=completed").json()["total"] == 1
    assert client.get("/api/workflow/mpps?since=2024-05-02").json()["total"] == 1
    assert client.get("/api/workflow/mpps?status=DONE").json()["field"] == "query.status"


def test_commitments_owed_and_delivered(client, console):
    store = CommitmentStore(console.data_dir)
    owed = Commitment("1.2.3.7", "MODALITY", "10.0.0.5", [("1.2", "1.2.3")], attempts=2,
                      last_error="association refused")
    store.save(owed)
    done = Commitment("1.2.3.8", "MODALITY", "10.0.0.5", [("1.2", "1.2.4"), ("1.2", "1.2.5")],
                      succeeded=[("1.2", "1.2.4")], failed=[("1.2", "1.2.5", 0x0112)])
    browse.record_delivered(console.data_dir, done, "the requesting association", 0)
    body = client.get("/api/workflow/commitments").json()
    assert body["pending"] == 1
    by_uid = {c["transaction_uid"]: c for c in body["items"]}
    assert (by_uid["1.2.3.7"]["delivered"], by_uid["1.2.3.7"]["attempts"],
            by_uid["1.2.3.7"]["last_error"]) == (False, 2, "association refused")
    assert (by_uid["1.2.3.8"]["delivered"], by_uid["1.2.3.8"]["committed"],
            by_uid["1.2.3.8"]["failed"]) == (True, 1, 1)
    assert by_uid["1.2.3.8"]["delivered_at"]
