"""The print queue, job and printers pages as a browser gets them (server-rendered
HTML): what a user looks for on each, and the JSON twin each links."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.films import ramp_films
from helpers.http import console_client
from helpers.net import wait_until
from test_api_jobs import Jobs, console_jobs

from printscp.http.app import create_app
from printscp.http.context import Console
from printscp.outputs.print_scu import print_films


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    yield from console_jobs(tmp_path)


def test_queue_lists_jobs_with_thumbnail_state_and_twin(jobs: Jobs) -> None:
    done = jobs.make(calling_ae="CT1", label="ACC7")
    r = jobs.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<h1>Print queue</h1>" in html
    assert f'src="/api/jobs/{done}/films/1.png?width=160"' in html
    assert re.search(r'<span class="state">DONE</span>', html)
    assert "CT1" in html and "ACC7" in html
    assert f'href="/jobs/{done}"' in html
    assert re.search(r'<time datetime="[^"]+">', html)
    assert 'href="/api/jobs?limit=50"' in html  # the JSON twin
    assert 'data-refresh="0"' in html  # nothing pending: no refreshing
    for name in ("calling_ae", "printer", "state", "since", "until", "label"):
        assert re.search(rf'<label>[^<]*<(input|select)[^>]* name="{name}"', html.replace(
            "\n", "")), name
    assert 'data-bulk="reprint"' in html and 'data-bulk="delete"' in html
    assert jobs.client.get(f"/api/jobs/{done}/films/1.png?width=160").status_code == 200


def test_queue_filters_pages_and_refreshes_while_pending(jobs: Jobs) -> None:
    made = [jobs.make(calling_ae="CT1") for _ in range(3)]
    pending = jobs.make(calling_ae="MR1", pending=True)
    html = jobs.client.get("/", params={"calling_ae": "MR1"}).text
    assert pending in html and made[0] not in html
    assert 'data-refresh="3"' in html and "<span class=\"state\">PENDING</span>" in html
    assert 'value="MR1"' in html  # the filter stays in its field
    from printscp.http import pages_jobs

    old = pages_jobs.PAGE_SIZE
    pages_jobs.PAGE_SIZE = 2
    try:
        first = jobs.client.get("/").text
        assert 'rel="next" href="/?offset=2"' in first and 'rel="prev"' not in first
        second = jobs.client.get("/?offset=2").text
        assert made[0] in second and 'rel="prev"' in second
    finally:
        pages_jobs.PAGE_SIZE = old


def test_queue_with_a_bad_filter_says_so(jobs: Jobs) -> None:
    r = jobs.client.get("/", params={"since": "last week"})
    assert r.status_code == 400
    assert 'role="alert"' in r.text and "query.since" in r.text
    assert "No print jobs" in jobs.client.get("/?state=FAILURE").text


def test_job_page_shows_films_pdf_deliveries_events_and_actions(jobs: Jobs) -> None:
    job_id = jobs.make(films=2, label="ACC8")
    r = jobs.client.get(f"/jobs/{job_id}")
    assert r.status_code == 200
    html = r.text
    assert f"Job {job_id}" in html and "DONE" in html
    assert f'src="/api/jobs/{job_id}/films/1.png?width=512"' in html
    assert f'src="/api/jobs/{job_id}/films/2.png?width=512"' in html
    assert f'data="/api/jobs/{job_id}/films/1.pdf" type="application/pdf"' in html
    assert "Deliveries" in html and "pdf:films" in html
    assert "Print Job events" in html
    assert "Film Session" in html and "FilmSessionLabel" in html and "ACC8" in html
    assert "Film Box 2" in html and "Image Box 1" in html
    assert 'data-action="reprint"' in html and 'data-action="delete"' in html
    assert 'data-action="cancel"' not in html
    assert 'value="PAPER|png-out"' in html  # reprint to another printer's target
    assert f'href="/api/jobs/{job_id}"' in html  # the twin
    assert jobs.client.get(f"/api/jobs/{job_id}/films/1.pdf").content.startswith(b"%PDF")


def test_job_page_of_a_held_job_and_of_an_unknown_one(jobs: Jobs) -> None:
    job_id = jobs.make(pending=True)
    jobs.client.post(f"/api/jobs/{job_id}/hold")
    html = jobs.client.get(f"/jobs/{job_id}").text
    assert "JOB HELD" in html and 'data-action="release"' in html
    assert 'data-action="cancel"' in html and 'data-action="hold"' not in html
    r = jobs.client.get("/jobs/20240101T000000000000Z-deadbeef")
    assert r.status_code == 404 and "no print job" in r.text


def test_printers_page(jobs: Jobs) -> None:
    r = jobs.client.get("/printers")
    assert r.status_code == 200
    html = r.text
    assert "printscp" in html and "PAPER" in html
    assert "NORMAL" in html and "png-out" in html
    assert "never recorded" in html
    assert 'data-test="PAPER"' in html
    assert 'href="/api/printers"' in html


@pytest.mark.slow
def test_a_film_printed_over_dicom_appears_in_the_queue(tmp_path: Path, make_node) -> None:
    node = make_node("[archive]\nenabled = false\n")
    print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="MODALITY",
                session={"FilmSessionLabel": "ACC42"})
    node.spool.wait_idle()
    console = Console(node.config)
    app = create_app(console)
    from printscp.http import pages_jobs

    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        app.include_router(pages_jobs.router)
    client = console_client(app)

    def listed() -> list:
        console.job_index.sync()
        return client.get("/api/jobs").json()["jobs"]

    jobs = wait_until(listed, 10)
    assert jobs[0]["calling_ae"] == "MODALITY" and jobs[0]["label"] == "ACC42"
    deadline = time.monotonic() + 10
    while client.get("/api/jobs").json()["jobs"][0]["state"] != "DONE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        console.job_index.sync()
    html = client.get("/").text
    assert jobs[0]["thumbnail"] in html.replace("&amp;", "&") and "ACC42" in html
    png = client.get(jobs[0]["thumbnail"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
