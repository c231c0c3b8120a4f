"""The printers API: each profile's status, what it supports, its targets' health and
its calibration, and the test of its targets (folders, CUPS queues, DICOM printers)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.http import console_client
from helpers.net import refusing_port
from helpers.nodes import node_config

from printscp.core import audit
from printscp.core.printer_state import Calibration, record_calibration
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.jobs.delivery import record_health


def toml(refused: int) -> str:
    return f"""
[archive]
enabled = false

[printer]
film_sizes = ["8INX10IN", "14INX17IN"]
film_box_defaults = {{film_size_id = "8INX10IN"}}

[printers.DRYFILM]
name = "DRYFILM"
magnification_types = ["REPLICATE", "CUBIC"]
film_box_defaults = {{magnification_type = "CUBIC"}}

[[printers.DRYFILM.targets]]
type = "pdf"

[[printers.DRYFILM.targets]]
type = "cups"
id = "ward-laser"
queue = "laser"
server = "127.0.0.1:{refused}"

[[printers.DRYFILM.targets]]
type = "dicom"
id = "imager"
destination = "IMAGER@127.0.0.1:{refused}"
timeout = 2
"""


@pytest.fixture
def refused() -> int:
    sock, port = refusing_port()
    yield port
    sock.close()


@pytest.fixture
def console(tmp_path: Path, refused: int) -> Console:
    return Console(node_config(tmp_path, toml(refused)))


@pytest.fixture
def client(console: Console) -> TestClient:
    return console_client(create_app(console))


def test_every_profile_with_what_it_supports(client: TestClient) -> None:
    r = client.get("/api/printers")
    assert r.status_code == 200
    printers = {p["name"]: p for p in r.json()["printers"]}
    assert list(printers) == ["printscp", "DRYFILM"]
    default, dry = printers["printscp"], printers["DRYFILM"]
    assert default["called_ae_title"] == "PRINTSCP" and dry["called_ae_title"] == "DRYFILM"
    assert default["section"] == "printer" and dry["section"] == "printers.DRYFILM"
    assert default["status"] == "NORMAL" and default["status_info"] == "NORMAL"
    assert default["film_sizes"] == ["8INX10IN", "14INX17IN"]
    assert default["default_film_size"] == "8INX10IN"
    assert len(dry["film_sizes"]) == 12
    assert dry["magnification_types"] == ["REPLICATE", "CUBIC"]
    assert "BLUE FILM" in dry["medium_types"]
    assert [t["label"] for t in dry["targets"]] == ["pdf:films", "ward-laser", "imager"]
    assert [t["kind"] for t in dry["targets"]] == ["pdf", "cups", "dicom"]
    assert {t["state"] for t in dry["targets"]} == {"unknown"}
    assert default["calibration"] is None


def test_a_failing_target_makes_its_printer_warning_offline(client: TestClient,
                                                            console: Console) -> None:
    record_health(console.data_dir, "ward-laser", "DRYFILM", ok=False,
                  error="queue stopped", info="PRINTER OFFLINE")
    dry = client.get("/api/printers/DRYFILM").json()
    assert (dry["status"], dry["status_info"]) == ("WARNING", "PRINTER OFFLINE")
    laser = next(t for t in dry["targets"] if t["label"] == "ward-laser")
    assert laser["state"] == "failing" and laser["error"] == "queue stopped"
    assert laser["since"]
    assert client.get("/api/printers/printscp").json()["status"] == "NORMAL"
    record_health(console.data_dir, "ward-laser", "DRYFILM", ok=True)
    dry = client.get("/api/printers/DRYFILM").json()
    assert dry["status"] == "NORMAL"
    assert next(t for t in dry["targets"] if t["label"] == "ward-laser")["state"] == "ok"


def test_low_disk_is_supply_low(tmp_path: Path, refused: int) -> None:
    console = Console(node_config(tmp_path, toml(refused), disk_warning_mb=1 << 30,
                                  disk_failure_mb=0))
    p = console_client(create_app(console)).get("/api/printers/printscp").json()
    assert (p["status"], p["status_info"]) == ("WARNING", "SUPPLY LOW")


def test_calibration_as_recorded(client: TestClient, console: Console) -> None:
    record_calibration(console.data_dir, Calibration(datetime(2024, 5, 6, 7, 8, 9),
                                                     "dry.lut", conforms=False))
    cal = client.get("/api/printers/printscp").json()["calibration"]
    assert cal["date"] == "20240506" and cal["time"] == "070809"
    assert cal["conforms"] is False and cal["profile"] == "dry.lut"


def test_by_key_or_ae_title_and_unknown(client: TestClient) -> None:
    assert client.get("/api/printers/PRINTSCP").json()["name"] == "printscp"
    r = client.get("/api/printers/NOPE")
    assert r.status_code == 404 and "known: printscp, DRYFILM" in r.json()["error"]
    assert client.post("/api/printers/NOPE/test").status_code == 404


def test_test_action_checks_each_target(client: TestClient, console: Console) -> None:
    r = client.post("/api/printers/DRYFILM/test")
    assert r.status_code == 200
    out = r.json()
    assert out["printer"] == "DRYFILM" and out["ok"] is False
    results = {t["target"]: t for t in out["targets"]}
    assert results["pdf:films"]["ok"] is True and "writable" in results["pdf:films"]["detail"]
    assert results["ward-laser"]["ok"] is False
    assert "refused" in results["ward-laser"]["detail"].lower()
    assert results["imager"]["ok"] is False
    assert "IMAGER@127.0.0.1" in results["imager"]["detail"]
    assert all(t["seconds"] < 5 for t in out["targets"])
    line = audit.read(console.data_dir)[0]
    assert line["action"] == "printer.test" and line["outcome"] == "failure"
    assert line["failed"] == ["ward-laser", "imager"]


def test_an_unwritable_folder_fails_its_test(client: TestClient, console: Console) -> None:
    films = console.data_dir / "films"
    films.mkdir(parents=True)
    films.chmod(0o500)
    try:
        import os

        if os.access(films, os.W_OK):  # root writes anyway
            pytest.skip("running as root: every folder is writable")
        r = client.post("/api/printers/printscp/test").json()
        assert r["targets"][0]["ok"] is False and "not writable" in r["targets"][0]["detail"]
    finally:
        films.chmod(0o700)


@pytest.mark.slow
def test_a_dicom_target_answers_echo_and_printer_n_get(tmp_path: Path, make_node) -> None:
    upstream = make_node(folder=tmp_path / "upstream")
    config = node_config(tmp_path, f"""
[archive]
enabled = false
[[printer.targets]]
type = "dicom"
id = "upstream"
destination = "PRINTSCP@127.0.0.1:{upstream.port}"
""")
    client = console_client(create_app(Console(config)))
    out = client.post("/api/printers/printscp/test").json()
    assert out["ok"] is True, out
    detail = out["targets"][0]["detail"]
    assert "Printer Status NORMAL" in detail and "C-ECHO: 0x0000" in detail


def test_the_qa_profile_version_in_use(client: TestClient, console: Console,
                                       tmp_path: Path) -> None:
    """After ``qa test-printer --recalibrate`` new jobs render with a QA profile version:
    the page and its JSON twin say which, and still show the configured one."""
    from calibration.qa import profiles
    from lut import device as lut_device

    assert client.get("/api/printers/DRYFILM").json()["qa_profile"] is None
    curve = lut_device.CharacteristicCurve(
        lut_device.DeviceKind.PRINTER, 255, np.arange(256),
        np.linspace(3.0, 0.2, 256), ambient=10.0, illumination=2000.0)
    version = profiles.add_version(console.data_dir, "DRYFILM", curve,
                                   note="recalibrated from week49.csv")
    qa = client.get("/api/printers/DRYFILM").json()["qa_profile"]
    assert qa["version"] == version.name == "v0001"
    assert qa["note"] == "recalibrated from week49.csv"
    assert client.get("/api/printers/printscp").json()["qa_profile"] is None
    page = client.get("/printers").text
    section = page[page.index('data-printer="DRYFILM"'):]
    assert "QA version <code>v0001</code>" in section[:section.index("</dl>")]
