"""The console application as a whole: its OpenAPI document and its error shape."""

from __future__ import annotations

import pytest
from helpers.http import console_client

from printscp.config import NodeConfig
from printscp.http.app import create_app
from printscp.http.context import Console


@pytest.fixture
def client(tmp_path):
    return console_client(create_app(Console(NodeConfig(data_dir=str(tmp_path / "data")))))


def test_the_openapi_document_covers_every_area_and_documents_400_not_422(client):
    doc = client.get("/api/openapi.json").json()
    paths = doc["paths"]
    for prefix in ("/api/jobs", "/api/printers", "/api/archive", "/api/workflow", "/api/node",
                   "/metrics", "/healthz", "/readyz"):
        assert any(p.startswith(prefix) for p in paths), prefix
    assert "422" not in str(doc) and "HTTPValidationError" not in doc["components"]["schemas"]
    assert paths["/api/jobs"]["get"]["responses"]["400"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("url, field", [
    ("/api/jobs?limit=0", "query.limit"),
    ("/api/jobs?limit=x", "query.limit"),
    ("/api/jobs?since=yesterday", "query.since"),
    ("/api/node/logs?level=LOUD", "query.level"),
    ("/api/archive/studies?limit=-1", "query.limit"),
    # beyond SQLite's 64-bit integers (found by schemathesis: a 500 before)
    ("/api/archive/patients?offset=10000000000000000000", "query.offset"),
    ("/api/jobs?offset=10000000000000000000", "query.offset"),
])
def test_a_bad_value_is_400_naming_the_field(client, url, field):
    answer = client.get(url)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field


def test_a_worklist_item_number_beyond_sqlite_is_400_not_500(client):
    answer = client.delete("/api/workflow/worklist/65785757159833518080")
    assert answer.status_code == 400 and answer.json()["field"] == "path.item_id"


def test_an_unknown_path_is_a_json_404(client):
    answer = client.get("/api/nothing-here")
    assert answer.status_code == 404 and answer.json() == {"error": "Not Found"}
