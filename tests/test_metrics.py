"""``/metrics``: what the node counts moves with real DICOM traffic, on every path; the
exposition parses and holds the node's gauges; multiprocess mode adds up every process;
and it answers in 50 ms with 10,000 jobs and 50,000 archived instances."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers.net import wait_until
from helpers.print_scu import PrintSCU
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydicom import dcmread

from printscp.core import uids
from printscp.http import metrics as http_metrics
from printscp.jobs.index import JobIndex
from printscp.services import storage

ROOT = Path(__file__).resolve().parents[1]
SECOND_PRINTER = '[printers.second]\nname = "second"\nae_title = "SECOND"\n'


def sample(name: str, **labels: str) -> float:
    """A sample of this process's default registry (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dimse_count(command: str, sop_class: str) -> float:
    return sample("printscp_dimse_seconds_count", command=command, sop_class=sop_class)


def scrape(node) -> dict[str, list]:
    """``/metrics`` of ``node``, parsed: samples by family name."""
    body, content_type = http_metrics.render(node.config.data_path, node.config)
    assert content_type.startswith("text/plain; version=")
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def value(families: dict[str, list], name: str, **labels: str) -> float:
    family = name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    found = [s.value for s in families[family] if s.name == name and
             all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, f"no {name} {labels} in /metrics"
    return sum(found)


# -- counters on every path --------------------------------------------------------------
@pytest.mark.slow
def test_echo_fast_path_store_and_print_move_the_counters(node, client, samples,
                                                          monkeypatch):
    claimed = []
    claim = storage.claim_store

    def counting_claim(*args, **kwargs):
        served = claim(*args, **kwargs)
        claimed.append(served is not None)
        return served

    monkeypatch.setattr(storage, "claim_store", counting_claim)
    before = {key: dimse_count(*key) for key in [
        ("C-ECHO", "Verification"), ("C-STORE", "CTImageStorage"),
        ("N-CREATE", "BasicFilmSession"), ("N-CREATE", "BasicFilmBox"),
        ("N-SET", "BasicGrayscaleImageBox"), ("N-ACTION", "BasicFilmBox")]}
    latency_before = sample("printscp_dimse_seconds_sum", command="C-STORE",
                            sop_class="CTImageStorage")

    ct = dcmread(samples / "CT_small.dcm")
    assoc = client(node.port, uids.VERIFICATION,
                   (ct.SOPClassUID, ct.file_meta.TransferSyntaxUID), calling="METRICS_A")
    assert assoc.send_c_echo().Status == 0
    assert assoc.send_c_store(ct).Status == 0
    assoc.release()
    assert claimed == [True]  # the C-STORE was served on the DUL thread's fast path

    with PrintSCU(node.port, calling="METRICS_P") as scu:
        scu.film_session()
        box, boxes, _ = scu.film_box()
        assert scu.image(boxes[0], 1, np.full((16, 16), 2000, np.uint16))[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, box)[0].Status == 0

    after = {key: dimse_count(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == dict.fromkeys(before, 1)
    assert sample("printscp_dimse_seconds_sum", command="C-STORE",
                  sop_class="CTImageStorage") > latency_before
    assert sample("printscp_dimse_seconds_bucket", command="C-STORE",
                  sop_class="CTImageStorage", le="+Inf") >= 1
    # One count per service used, once the association's line is written.
    assert wait_until(lambda: sample("printscp_associations_total", calling_ae="METRICS_P",
                                     service="print", ended="released"), timeout=5) == 1
    for service in ("verification", "storage"):
        assert sample("printscp_associations_total", calling_ae="METRICS_A",
                      service=service, ended="released") == 1


@pytest.mark.slow
def test_a_rejected_association_is_counted_as_rejected(make_node):
    from helpers.clients import associate

    node = make_node("[access]\ncalling_ae_titles = [\"FRIEND\"]\n")
    refused = associate(node.port, uids.VERIFICATION, calling="STRANGER")
    assert not refused.is_established
    assert wait_until(lambda: sample("printscp_associations_total", calling_ae="STRANGER",
                                     service="none", ended="rejected"), timeout=5) == 1


# -- the exposition -----------------------------------------------------------------------
@pytest.mark.slow
def test_metrics_text_parses_and_holds_the_node_gauges(make_node, client, samples):
    node = make_node(SECOND_PRINTER)
    ct = dcmread(samples / "CT_small.dcm")
    assoc = client(node.port, (ct.SOPClassUID, ct.file_meta.TransferSyntaxUID),
                   calling="METRICS_S")
    assert assoc.send_c_store(ct).Status == 0
    assoc.release()
    with PrintSCU(node.port, calling="METRICS_J") as scu:
        scu.film_session()
        box, boxes, _ = scu.film_box()
        scu.image(boxes[0], 1, np.full((16, 16), 100, np.uint16))
        assert scu.action(uids.BASIC_FILM_BOX, box)[0].Status == 0
    node.spool.wait_idle()
    JobIndex(node.config.data_path).sync()  # whatever the spool has not recorded yet

    families = scrape(node)
    # The CT, and the film stored as Encapsulated PDF.
    assert value(families, "printscp_archive_instances") == \
        node.archive.index.counts()["instances"] == 2
    assert value(families, "printscp_archive_bytes") == sum(
        p.stat().st_size for p in (node.config.data_path / "archive").rglob("*.dcm"))
    assert value(families, "printscp_spool_depth") == 0
    assert value(families, "printscp_disk_free_bytes") > 0
    assert value(families, "printscp_disk_failure_threshold_bytes") == 64 << 20
    default, second = node.config.printer.name, node.config.printers["second"].name
    for printer in (default, second):
        assert value(families, "printscp_printer_status", printer=printer,
                     status="NORMAL") == 1
        assert value(families, "printscp_printer_status", printer=printer,
                     status="FAILURE") == 0
        assert value(families, "printscp_printer_targets_failing", printer=printer) == 0
    assert value(families, "printscp_jobs_by_state", state="DONE", printer=default) == 1
    assert value(families, "printscp_jobs_by_state", state="DONE", printer=second) == 0
    assert value(families, "printscp_dimse_seconds_count", command="C-STORE",
                 sop_class="CTImageStorage") >= 1
    assert value(families, "printscp_associations_total", calling_ae="METRICS_S",
                 service="storage") == 1
    assert "printscp_open_associations" in families


def test_printer_profiles_sharing_a_name_give_one_series(tmp_path):
    from helpers.nodes import node_config

    config = node_config(tmp_path, '[printers.other]\nae_title = "OTHER"\n')
    assert config.printer.name == config.printers["other"].name
    body, _ = http_metrics.render(config.data_path, config)
    families = {f.name: f.samples for f in text_string_to_metric_families(body.decode())}
    status = [s.labels["printer"] for s in families["printscp_printer_status"]
              if s.labels["status"] == "NORMAL"]
    jobs = [s.labels["printer"] for s in families["printscp_jobs_by_state"]
            if s.labels["state"] == "DONE"]
    assert status == jobs == [config.printer.name]


def test_a_part_that_cannot_be_read_is_left_out_not_the_scrape(tmp_path, caplog):
    from helpers.nodes import node_config

    config = node_config(tmp_path)
    data = config.data_path
    data.mkdir(parents=True)
    (data / "index.sqlite").write_bytes(b"not a database" * 100)
    body, _ = http_metrics.render(data, config)
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "printscp_archive_instances" not in names
    assert {"printscp_spool_depth", "printscp_disk_free_bytes"} <= names
    assert "archive left out" in caplog.text


# -- multiprocess mode ----------------------------------------------------------------------
def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items()
                                  if k != "PROMETHEUS_MULTIPROC_DIR"},
                               "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_prepare_adds_up_every_process_and_clears_the_last_run(tmp_path):
    stale = tmp_path / "data" / "run" / "metrics" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by the last run")
    script = tmp_path / "count.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, sys
        from pathlib import Path
        from printscp.app import telemetry

        def worker():
            from printscp.core import metrics
            metrics.dimse("C-STORE", "1.2.840.10008.5.1.4.1.1.2", 0.002)
            metrics.association_closed("MOD", ["1.2.840.10008.5.1.4.1.1.2"], "released")

        if __name__ == "__main__":
            folder = telemetry.prepare(Path("data"))
            assert "prometheus_client" not in sys.modules
            assert telemetry.prepare(Path("data")) == folder  # again: nothing changes
            from prometheus_client import values
            assert values.ValueClass.__name__ == "MmapedValue", values.ValueClass
            from printscp.core import metrics
            metrics.dimse("C-STORE", "CTImageStorage", 0.001)
            for _ in range(2):
                p = multiprocessing.get_context("spawn").Process(target=worker)
                p.start(); p.join()
                assert p.exitcode == 0
            from printscp.http.metrics import render
            from printscp.config import load_config
            body, _ = render(Path("data"), load_config(None, data_dir="data"))
            sys.stdout.write(body.decode())
        """))
    done = _python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
                   tmp_path)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    families = {f.name: f.samples for f in text_string_to_metric_families(done.stdout)}
    assert value(families, "printscp_dimse_seconds_count", command="C-STORE",
                 sop_class="CTImageStorage") == 3
    assert value(families, "printscp_associations_total", calling_ae="MOD",
                 service="storage", ended="released") == 2


def test_prepare_refuses_once_prometheus_client_chose_single_process_mode(tmp_path):
    done = _python("""
        import prometheus_client
        from printscp.app import telemetry
        try:
            telemetry.prepare("data")
        except RuntimeError as exc:
            print("refused:", exc)
        """, tmp_path)
    assert "refused: prometheus_client was imported before" in done.stdout, done.stderr


def test_the_command_line_imports_no_prometheus_client_before_serve_prepares(tmp_path):
    done = _python("""
        import sys
        from printscp.app.cli import main, serve
        from printscp.config import load_config
        load_config(None, data_dir="data")
        print(sorted(m for m in sys.modules if m.startswith("prometheus")))
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- speed -------------------------------------------------------------------------------
JOBS, INSTANCES = 10_000, 50_000


def build_busy_data_dir(data: Path) -> None:
    """A data directory as a busy node's: 10,000 jobs in the job index (a few still
    spooled) and 50,000 instances in the archive index (rows as the archive writes
    them, attributes of realistic size; no instance files, which /metrics never
    reads)."""
    from printscp.archive.index import Index

    Index(data / "index.sqlite").close()
    db = sqlite3.connect(data / "index.sqlite", isolation_level=None)
    db.execute("BEGIN")
    db.execute("INSERT INTO patients (pk, patient_key, attrs) VALUES (1, 'P', '{}')")
    db.execute("INSERT INTO studies (pk, patient_pk, study_uid, attrs) VALUES (1, 1, 'S', '{}')")
    db.executemany("INSERT INTO series (pk, study_pk, series_uid, attrs) VALUES (?, 1, ?, '{}')",
                   ((s, f"1.2.3.{s}") for s in range(1, 2001)))
    attrs = '{"00080008":{"vr":"CS","Value":["ORIGINAL"]}' + ',"x":"' + "y" * 2000 + '"}'
    db.executemany(
        "INSERT INTO instances (series_pk, sop_uid, sop_class_uid, instance_number,"
        " transfer_syntax, path, size, sha256, stored_at, source_ae, attrs)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((i % 2000 + 1, f"1.2.3.4.{i}", "1.2.840.10008.5.1.4.1.1.2", str(i),
          "1.2.840.10008.1.2.1", f"s/{i}.dcm", 525_000, "0" * 64,
          "2024-01-01T00:00:00.000+00:00", "MOD", attrs) for i in range(INSTANCES)))
    db.execute("COMMIT")
    db.close()
    index = JobIndex(data)
    states = ("DONE",) * 8 + ("FAILURE", "PENDING")
    for i in range(JOBS):
        index.record_later({"job_id": f"2024{i:08d}", "created": "2024-01-01T00:00:00Z",
                            "calling_ae": f"MOD{i % 7}",
                            "printer": ("printscp", "second")[i % 2],
                            "status": states[i % 10], "films": [{}],
                            "session": {"film_session_label": f"L{i}"}})
    assert index.flush(120)
    index.close()
    for i in range(20):
        (data / "spool" / f"2024{i:08d}").mkdir(parents=True)


@pytest.mark.slow
def test_metrics_with_10000_jobs_and_50000_instances(tmp_path):
    """At the benchmark's scale (benchmarks/console.py times the scrape): the figures
    are right, and the archive's size is summed from an index, not by reading every
    instance row (about 100 ms for 50,000 rows)."""
    import sqlite3

    from helpers.nodes import node_config

    config = node_config(tmp_path, SECOND_PRINTER)
    build_busy_data_dir(config.data_path)
    body, _ = http_metrics.render(config.data_path, config)
    families = {f.name: f.samples for f in text_string_to_metric_families(body.decode())}
    assert value(families, "printscp_archive_instances") == INSTANCES
    assert value(families, "printscp_archive_bytes") == INSTANCES * 525_000
    assert value(families, "printscp_jobs_by_state", state="DONE", printer="second") == 4000
    assert value(families, "printscp_spool_depth") == 20
    with sqlite3.connect(config.data_path / "index.sqlite") as db:
        plan = " ".join(str(r) for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*), SUM(size) FROM instances"))
    assert "COVERING INDEX instances_size" in plan, plan
