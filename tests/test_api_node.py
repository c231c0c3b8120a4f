"""The node API: what the node is, its associations, its log lines, its audit trail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.http import console_client
from helpers.nodes import node_config

from printscp import __version__
from printscp.core import audit
from printscp.http.api.node import MASK, plain
from printscp.http.app import create_app
from printscp.http.context import Console


@pytest.fixture
def console(tmp_path: Path) -> Console:
    config = node_config(tmp_path, '[printers.COLOR]\nname = "colour"\n', ae_title="NODE1")
    return Console(config, dicom_port=lambda: 11112)


@pytest.fixture
def client(console: Console) -> TestClient:
    return console_client(create_app(console))


def test_node_says_what_it_is(client, console):
    body = client.get("/api/node").json()
    assert body["version"] == __version__
    assert body["ae_title"] == "NODE1"
    assert body["called_ae_titles"] == ["NODE1", "COLOR"]
    assert body["dicom"] == {"bind": "127.0.0.1", "port": 11112, "listening": True}
    assert body["disk"]["free_bytes"] > 0 and body["disk"]["status"] in (
        "NORMAL", "WARNING", "FAILURE")
    assert body["uptime_seconds"] >= 0
    assert body["config"]["printers"]["COLOR"]["name"] == "colour"
    assert body["config"]["data_dir"] == str(console.data_dir)


def test_secrets_are_masked():
    config = {"http": {"users": {"ann": {"password_hash": "scrypt$abc", "role": "admin"}},
                       "secret_key": "s3cr3t", "tokens": ["t1"]},
              "targets": [{"server": "https://ann:pw@cups.example:631/printers/x"}],
              "empty_password": ""}
    masked = plain(config)
    assert masked["http"]["users"]["ann"] == {"password_hash": MASK, "role": "admin"}
    assert masked["http"]["secret_key"] == MASK and masked["http"]["tokens"] == MASK
    assert masked["targets"][0]["server"] == f"https://ann:{MASK}@cups.example:631/printers/x"
    assert masked["empty_password"] == ""  # nothing to hide: shown as not set


def test_associations_from_the_live_files(client, console):
    live = pytest.importorskip("printscp.core.live")
    assert client.get("/api/node/associations").json() == {"items": [], "total": 0}
    record = {"id": "a1", "calling_ae": "CT1", "called_ae": "NODE1", "peer": "10.0.0.9:4000",
              "since": "2024-05-01T10:00:00+00:00", "services": ["Verification"],
              "operations": 3, "bytes_received": 100, "bytes_sent": 50}
    live.publish(console.data_dir, [record])
    try:
        body = client.get("/api/node/associations").json()
    finally:
        live.withdraw(console.data_dir)
    assert body["total"] == 1 and body["items"][0]["calling_ae"] == "CT1"


def test_logs_filtered_by_level_and_text(client, console):
    logger = logging.getLogger("printscp.test.node")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(console.logs)
    try:
        logger.info("association from CT1 released")
        logger.warning("delivery to cups failed, retry 1")
        logger.debug("P-DATA 16 kB")
    finally:
        logger.removeHandler(console.logs)
    lines = client.get("/api/node/logs").json()["items"]
    assert [line["message"] for line in lines] == [
        "P-DATA 16 kB", "delivery to cups failed, retry 1", "association from CT1 released"]
    assert [x["level"] for x in client.get("/api/node/logs?level=warning").json()["items"]] \
        == ["WARNING"]
    assert len(client.get("/api/node/logs?text=ct1").json()["items"]) == 1
    assert len(client.get("/api/node/logs?limit=2").json()["items"]) == 2
    bad = client.get("/api/node/logs?level=LOUD")
    assert bad.status_code == 400 and bad.json()["field"] == "query.level"


def test_audit_trail(client, console):
    audit.record(console.data_dir, "job.cancel", "J1", user="ann", source="127.0.0.1")
    [line] = client.get("/api/node/audit").json()["items"]
    assert (line["action"], line["target"], line["user"]) == ("job.cancel", "J1", "ann")


@pytest.mark.parametrize("name", ["server", "expired"])
def test_tls_listener_and_its_certificate(tmp_path, name):
    """The node API and page show the TLS listener and the certificate's expiry;
    /readyz fails on an expired certificate (every TLS peer would refuse it)."""
    from helpers.tls import make_pki

    pki = make_pki(tmp_path / "pki")
    config = node_config(tmp_path, f"""[tls]
enabled = true
port = 2762
certificate = "{pki.cert(name)}"
private_key = "{pki.key(name)}"
ca_certificates = "{pki.ca}"
""")
    client = console_client(create_app(Console(config, dicom_port=lambda: 11112,
                                               tls_port=lambda: 2762)))
    tls = client.get("/api/node").json()["tls"]
    assert tls["enabled"] and tls["port"] == 2762 and tls["listening"]
    assert tls["require_client_certificate"] and tls["min_version"] == "1.2"
    assert tls["certificate"]["subject"] == f"CN={name},O=printscp tests"
    page = client.get("/node").text
    assert f"CN={name},O=printscp tests" in page
    ready = client.get("/readyz").json()
    check = ready["checks"]["tls_certificate"]
    if name == "server":
        assert check["ok"] and tls["certificate"]["days_left"] >= 29
        assert "29 days" in page or "30 days" in page
    else:
        assert not check["ok"] and "expired" in check["detail"]
        assert "tls_certificate" in ready["failed"]
        assert 'class="badge fail">expired' in page
