"""``printscp media export`` / ``import`` on the archive, checked with DCMTK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from helpers.archive_data import Study, instance, write_study
from helpers.dcmtk import tool

from printscp.archive.archive import Archive

pytestmark = pytest.mark.slow  # every test runs printscp media


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "printscp", "media", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def archive_dir(tmp_path) -> tuple[Path, list[Study]]:
    data = tmp_path / "data"
    archive = Archive(data)
    studies = [Study("P1", "DOE^JANE", "20261101", "A1", series=2, images=2),
               Study("P2", "ROE^RICHARD", "20261102", "A2", images=3)]
    for i, study in enumerate(studies):
        for path in write_study(study, tmp_path / f"in{i}"):
            assert archive.import_file(path).status == 0
    return data, studies


@pytest.mark.dcmtk("dcmdump", "dcmmkdir")
def test_export_one_patient_as_a_standard_file_set(archive_dir, tmp_path):
    data, studies = archive_dir
    out = tmp_path / "cd"
    res = run("export", "--patient", "P1", "-o", str(out), "--data-dir", str(data))
    assert res.returncode == 0, res.stderr
    assert "4 file(s), 1 patient(s), 1 study, 2 series" in res.stdout
    names = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert Path("DICOMDIR") in names and len(names) == 5
    for name in names:
        assert all(len(part) <= 8 and part == part.upper() and "." not in part
                   for part in name.parts)
    dump = subprocess.run([tool("dcmdump"), str(out / "DICOMDIR")], capture_output=True,
                          text=True)
    assert dump.returncode == 0 and dump.stdout.count("CS [IMAGE]") == 4
    check = subprocess.run([tool("dcmmkdir"), "-Pgp", "-a", "-nb", "+D", str(tmp_path / "chk"),
                            *[str(n) for n in names if n.name != "DICOMDIR"]], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # DCMTK accepts every file for STD-GEN-CD
    uids = {str(pydicom.dcmread(out / n).StudyInstanceUID) for n in names
            if n.name != "DICOMDIR"}
    assert uids == {studies[0].study_uid}


def test_import_reports_unreadable_files_and_stores_the_rest(archive_dir, tmp_path):
    data, _ = archive_dir
    out = tmp_path / "cd"
    assert run("export", "-o", str(out), "--data-dir", str(data)).returncode == 0
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    files[0].write_bytes(b"not dicom at all")
    target = tmp_path / "other"
    res = run("import", str(out), "--data-dir", str(target))
    assert res.returncode == 1
    assert "6 instance(s) imported, 1 file(s) could not be read or stored" in res.stdout
    assert str(files[0].name) in res.stderr
    assert Archive(target).index.counts()["instances"] == 6


def test_import_of_a_folder_without_dicomdir_is_refused(tmp_path):
    res = run("import", str(tmp_path), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2 and "DICOMDIR" in res.stderr


def test_patient_data_stays_out_of_file_names(tmp_path):
    data = tmp_path / "data"
    ds = instance(Study("SECRET-ID", "NAME^IN^FILE", "20261101", "A9"), 0, 1)
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert Archive(data).import_file(path).status == 0
    out = tmp_path / "cd"
    assert run("export", "-o", str(out), "--data-dir", str(data)).returncode == 0
    assert not [p for p in out.rglob("*") if "SECRET" in str(p) or "NAME" in str(p)]
