"""The jobs API: what an administrator listing, inspecting, reprinting, holding,
cancelling and deleting print jobs sees, and the films' PDFs and previews.

Jobs are made through the domain: a :class:`Spool` over the console's data directory
renders them as the node does (``render_job``); a spool that is not started leaves
them PENDING, as a busy or stopped node would.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.films import ramp_films
from helpers.http import console_client
from helpers.nodes import node_config
from PIL import Image

from printscp.core import audit
from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.jobs.render import render_job
from printscp.jobs.spool import PrintJob, Spool, new_job_id, now_iso, print_job_uid
from printscp.printing.records import film_box_record

#: Two printer profiles: the default one (a PDF per job) and PAPER (PNG files).
TOML = """
[archive]
enabled = false

[printers.PAPER]
name = "PAPER"

[[printers.PAPER.targets]]
type = "png"
id = "png-out"
directory = "paper"
"""


@dataclass
class Jobs:
    """A console over a data directory, its test client, and ways to make jobs."""

    console: Console
    client: TestClient
    spool: Spool
    idle: Spool

    def make(self, *, films: int = 1, calling_ae: str = "MODALITY", label: str = "",
             printer: str = "printscp", pending: bool = False, size: str = "8INX10IN"
             ) -> str:
        """A job as a print N-ACTION spools it; rendered unless ``pending``."""
        config = self.console.config
        arrays: dict[str, np.ndarray] = {}
        records = [film_box_record(fb, arrays, f"film{i}")
                   for i, fb in enumerate(ramp_films(films, size=size), start=1)]
        job_id = new_job_id()
        job = PrintJob(
            job_id=job_id, created=now_iso(), calling_ae=calling_ae, called_ae="PRINTSCP",
            peer="127.0.0.1",
            session={"number_of_copies": 1, "print_priority": "MED",
                     "medium_type": "BLUE FILM", "film_destination": "MAGAZINE",
                     "film_session_label": label},
            films=records,
            extra={"print_job_uid": print_job_uid(job_id, "1.2.826.0.1.3680043.8.498."),
                   **config.job_printing(config.printer_named(printer))})
        (self.idle if pending else self.spool).submit(job, arrays)
        self.settle()
        return job_id

    def settle(self) -> None:
        self.spool.wait_idle()
        self.console.job_index.flush()
        self.idle.index.flush()


def console_jobs(tmp_path: Path, toml: str = TOML) -> Iterator[Jobs]:
    """:class:`Jobs` over ``tmp_path/data``; the spool is stopped afterwards."""
    config = node_config(tmp_path, toml)
    console = Console(config, enqueue=lambda job_id: spool.enqueue(job_id))
    spool = Spool(config.data_path, render_job, index=console.job_index)
    idle = Spool(config.data_path, render_job, index=console.job_index)
    spool.start()
    app = create_app(console)
    from printscp.http import pages_jobs

    if not any(getattr(r, "path", None) == "/" for r in app.routes):  # until app.py has it
        app.include_router(pages_jobs.router)
    try:
        yield Jobs(console, console_client(app), spool, idle)
    finally:
        spool.stop()


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    yield from console_jobs(tmp_path)


def audit_lines(jobs: Jobs) -> list[dict[str, Any]]:
    return audit.read(jobs.console.data_dir)


# -- listing ----------------------------------------------------------------------------
def test_list_is_newest_first_with_state_printer_and_thumbnail(jobs: Jobs) -> None:
    first = jobs.make(calling_ae="CT1", label="ACC1")
    second = jobs.make(calling_ae="MR1", label="ACC2", films=2)
    r = jobs.client.get("/api/jobs")
    assert r.status_code == 200
    data = r.json()
    assert data["total"] == 2 and data["limit"] == 50 and data["offset"] == 0
    assert [j["job_id"] for j in data["jobs"]] == [second, first]
    newest = data["jobs"][0]
    assert newest["state"] == "DONE" and newest["printer"] == "printscp"
    assert newest["calling_ae"] == "MR1" and newest["label"] == "ACC2"
    assert newest["films"] == 2
    assert newest["thumbnail"] == f"/api/jobs/{second}/films/1.png?width=160"
    assert newest["page"] == f"/jobs/{second}"
    thumb = jobs.client.get(newest["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).width == 160


def test_filters_and_paging(jobs: Jobs) -> None:
    made = [jobs.make(calling_ae="CT1" if i % 2 else "MR1", label=f"ACC{i}") for i in range(5)]
    pending = jobs.make(calling_ae="CT1", label="WAITING", pending=True)
    get = jobs.client.get
    ct = get("/api/jobs", params={"calling_ae": "CT1"}).json()
    assert {j["job_id"] for j in ct["jobs"]} == {made[1], made[3], pending}
    assert get("/api/jobs", params={"state": "pending"}).json()["jobs"][0]["job_id"] == pending
    assert get("/api/jobs", params={"state": "DONE"}).json()["total"] == 5
    assert [j["job_id"] for j in get("/api/jobs", params={"label": "acc3"}).json()["jobs"]] \
        == [made[3]]
    assert get("/api/jobs", params={"printer": "PAPER"}).json()["total"] == 0
    today = made[0][:4] + "-" + made[0][4:6] + "-" + made[0][6:8]
    assert get("/api/jobs", params={"since": "2000-01-01", "until": "2999-01-01"}
               ).json()["total"] == 6
    assert get("/api/jobs", params={"until": "2000-01-01"}).json()["total"] == 0
    assert get("/api/jobs", params={"since": today + "T00:00:00Z"}).json()["total"] >= 5
    page = get("/api/jobs", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 6 and [j["job_id"] for j in page["jobs"]] == [made[3], made[2]]
    assert page["active"] == 0
    assert get("/api/jobs", params={"limit": 2}).json()["active"] == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"state": "LOST"}, "query.state"), ({"since": "yesterday"}, "query.since"),
    ({"until": "2024-02-30"}, "query.until"), ({"limit": 0}, "query.limit"),
    ({"limit": "many"}, "query.limit"), ({"offset": -1}, "query.offset"),
])
def test_bad_filters_are_400_naming_the_field(jobs: Jobs, params: dict, field: str) -> None:
    r = jobs.client.get("/api/jobs", params=params)
    assert r.status_code == 400
    assert r.json()["field"] == field and field in r.json()["error"]


# -- one job ----------------------------------------------------------------------------
def test_job_has_attributes_films_deliveries_events_and_uid(jobs: Jobs) -> None:
    job_id = jobs.make(films=2, label="ACC9", size="14INX17IN")
    r = jobs.client.get(f"/api/jobs/{job_id}")
    assert r.status_code == 200
    job = r.json()
    assert job["state"] == "DONE" and job["label"] == "ACC9"
    assert job["print_job_uid"].startswith("1.2.826.0.1.3680043.8.498.1.")
    assert job["session"]["MediumType"] == "BLUE FILM"
    assert job["session"]["FilmSessionLabel"] == "ACC9"
    assert [f["number"] for f in job["films"]] == [1, 2]
    film = job["films"][0]
    assert film["attributes"]["FilmSizeID"] == "14INX17IN"
    assert film["attributes"]["ImageDisplayFormat"] == "STANDARD\\1,1"
    assert film["image_boxes"][0]["position"] == 1
    assert film["image_boxes"][0]["attributes"]["BitsStored"] == 12
    assert film["pdf"] == f"/api/jobs/{job_id}/films/1.pdf"
    assert film["preview"] == f"/api/jobs/{job_id}/films/1.png"
    assert job["deliveries"][0]["target"] == "pdf:films"
    assert job["deliveries"][0]["state"] == "done"
    assert [e["state"] for e in job["events"]][-1] == "DONE"
    assert "PENDING" in [e["state"] for e in job["events"]]
    assert job["actions"] == ["reprint", "delete"] and job["reprintable"]
    assert job["outputs"][0].endswith(".pdf")


def test_unknown_job_is_404(jobs: Jobs) -> None:
    for url in ("/api/jobs/20240101T000000000000Z-deadbeef",
                "/api/jobs/20240101T000000000000Z-deadbeef/films/1.png",
                "/api/jobs/20240101T000000000000Z-deadbeef/films/1.pdf"):
        r = jobs.client.get(url)
        assert r.status_code == 404, url
        assert "no print job" in r.json()["error"]


def test_film_pdf_is_served_inline(jobs: Jobs) -> None:
    job_id = jobs.make()
    r = jobs.client.get(f"/api/jobs/{job_id}/films/1.pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline")
    assert r.content.startswith(b"%PDF")
    assert jobs.client.get(f"/api/jobs/{job_id}/films/2.pdf").status_code == 404


def test_film_preview_is_the_film_at_the_width_asked(jobs: Jobs) -> None:
    job_id = jobs.make(size="8INX10IN")
    r = jobs.client.get(f"/api/jobs/{job_id}/films/1.png", params={"width": 400})
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    image = Image.open(io.BytesIO(r.content))
    assert image.width == 400
    assert abs(image.height - 500) <= 2  # 8 x 10 inch portrait
    pixels = np.asarray(image.convert("L"), dtype=float)
    # The ramp, left to right: the middle row brightens steadily across the image.
    row = pixels[image.height // 2, image.width // 4: 3 * image.width // 4]
    assert (np.diff(row) >= 0).all() and row[-1] - row[0] > 60
    again = jobs.client.get(f"/api/jobs/{job_id}/films/1.png", params={"width": 400})
    assert again.content == r.content  # the cached file
    assert jobs.client.get(f"/api/jobs/{job_id}/films/2.png").status_code == 404


@pytest.mark.parametrize("width", ["0", "10", "99999", "wide"])
def test_bad_preview_width_is_400(jobs: Jobs, width: str) -> None:
    job_id = jobs.make()
    r = jobs.client.get(f"/api/jobs/{job_id}/films/1.png", params={"width": width})
    assert r.status_code == 400 and r.json()["field"] == "query.width"


# -- actions ----------------------------------------------------------------------------
def test_reprint_to_the_same_printer(jobs: Jobs) -> None:
    job_id = jobs.make(label="ACC5")
    r = jobs.client.post(f"/api/jobs/{job_id}/reprint", json={})
    assert r.status_code == 201
    new_id = r.json()["job_id"]
    assert new_id != job_id and r.json()["url"] == f"/api/jobs/{new_id}"
    jobs.settle()
    new = jobs.client.get(f"/api/jobs/{new_id}").json()
    assert new["state"] == "DONE" and new["reprint_of"] == job_id and new["label"] == "ACC5"
    assert new["printer"] == "printscp"
    line = audit_lines(jobs)[0]
    assert line["action"] == "job.reprint" and line["target"] == job_id
    assert line["user"] == "local" and line["source"] == "testclient"
    assert line["new_job_id"] == new_id and line["outcome"] == "success"


def test_reprint_to_another_printer_and_target(jobs: Jobs) -> None:
    job_id = jobs.make()
    r = jobs.client.post(f"/api/jobs/{job_id}/reprint", json={"printer": "PAPER"})
    assert r.status_code == 201
    jobs.settle()
    new = jobs.client.get(f"/api/jobs/{r.json()['job_id']}").json()
    assert new["printer"] == "PAPER" and new["state"] == "DONE"
    assert new["outputs"] and new["outputs"][0].endswith(".png")
    assert "/paper/" in new["outputs"][0]
    r = jobs.client.post(f"/api/jobs/{job_id}/reprint",
                         json={"printer": "PAPER", "target": "png-out"})
    assert r.status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    ({"printer": "NOWHERE"}, "body.printer"),
    ({"printer": "PAPER", "target": "cups:none"}, "body.target"),
    ({"printer": 5}, "body.printer"),
])
def test_reprint_to_an_unknown_printer_or_target_is_400(jobs: Jobs, body: dict,
                                                        field: str) -> None:
    job_id = jobs.make()
    r = jobs.client.post(f"/api/jobs/{job_id}/reprint", json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field
    assert jobs.client.get("/api/jobs").json()["total"] == 1  # nothing half-done


def test_hold_release_cancel_a_pending_job(jobs: Jobs) -> None:
    job_id = jobs.make(pending=True)
    post = jobs.client.post
    r = post(f"/api/jobs/{job_id}/hold")
    assert r.status_code == 200
    assert r.json() == {"job_id": job_id, "state": "PENDING", "status_info": "JOB HELD"}
    actions = jobs.client.get(f"/api/jobs/{job_id}").json()["actions"]
    assert actions == ["reprint", "release", "cancel"]
    assert jobs.client.get("/api/jobs", params={"state": "HELD"}).json()["total"] == 1
    r = post(f"/api/jobs/{job_id}/release")
    assert r.status_code == 200 and r.json()["status_info"] == "QUEUED"
    # The console's enqueue handed it to the running spool, which printed it.
    jobs.settle()
    assert jobs.client.get(f"/api/jobs/{job_id}").json()["state"] == "DONE"
    other = jobs.make(pending=True)
    r = post(f"/api/jobs/{other}/cancel")
    assert r.status_code == 200
    assert r.json()["state"] == "FAILURE" and r.json()["status_info"] == "JOB CANCELED"
    assert post(f"/api/jobs/{other}/cancel").status_code == 409
    assert post(f"/api/jobs/{other}/hold").status_code == 409
    assert [(a["action"], a["outcome"]) for a in audit_lines(jobs)[:3]] == [
        ("job.hold", "refused"), ("job.cancel", "refused"), ("job.cancel", "success")]


def test_delete(jobs: Jobs) -> None:
    done = jobs.make()
    pending = jobs.make(pending=True)
    pdf = Path(jobs.client.get(f"/api/jobs/{done}").json()["outputs"][0])
    assert pdf.is_file()
    assert jobs.client.delete(f"/api/jobs/{pending}").status_code == 409
    r = jobs.client.delete(f"/api/jobs/{done}")
    assert r.status_code == 200 and r.json()["state"] == "DELETED"
    assert not pdf.exists()
    assert jobs.client.get(f"/api/jobs/{done}").status_code == 404
    assert jobs.client.delete(f"/api/jobs/{done}").status_code == 404
    assert [j["job_id"] for j in jobs.client.get("/api/jobs").json()["jobs"]] == [pending]
    assert audit_lines(jobs)[1]["action"] == "job.delete"


def test_bulk_actions_report_each_job(jobs: Jobs) -> None:
    a, b = jobs.make(pending=True), jobs.make(pending=True)
    done = jobs.make()
    unknown = "20240101T000000000000Z-deadbeef"
    r = jobs.client.post("/api/jobs/bulk",
                         json={"action": "cancel", "job_ids": [a, b, done, unknown]})
    assert r.status_code == 200
    out = r.json()
    assert out["ok"] == 2 and out["failed"] == 2
    assert [(x["job_id"], x["ok"], x["status"]) for x in out["results"]] == [
        (a, True, 200), (b, True, 200), (done, False, 409), (unknown, False, 404)]
    r = jobs.client.post("/api/jobs/bulk", json={"action": "reprint", "job_ids": [done],
                                                 "printer": "PAPER"})
    assert r.json()["results"][0]["new_job_id"]
    r = jobs.client.post("/api/jobs/bulk", json={"action": "explode", "job_ids": [done]})
    assert r.status_code == 400 and r.json()["field"] == "body.action"
    r = jobs.client.post("/api/jobs/bulk", json={"action": "delete", "job_ids": []})
    assert r.status_code == 400 and r.json()["field"] == "body.job_ids"


def test_openapi_describes_the_jobs_api(jobs: Jobs) -> None:
    doc = jobs.client.get("/api/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/reprint",
                 "/api/jobs/{job_id}/cancel", "/api/jobs/{job_id}/hold",
                 "/api/jobs/{job_id}/release", "/api/jobs/bulk",
                 "/api/jobs/{job_id}/films/{number}.pdf",
                 "/api/jobs/{job_id}/films/{number}.png"):
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    assert {"JobList", "JobDetail", "Delivery", "Film", "BulkResult"} <= schemas.keys()
    assert "cups_job_id" in schemas["Delivery"]["properties"]
    assert "delete" in paths["/api/jobs/{job_id}"]
    assert json.dumps(paths["/api/jobs/{job_id}/films/{number}.pdf"]).count("application/pdf")
