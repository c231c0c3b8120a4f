"""Printed films in the archive: Encapsulated PDF instances, linked to their patient."""

from __future__ import annotations

import shutil
import subprocess

import pydicom
import pytest
from helpers.archive_data import Study, instance
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.films import pdf_pages, ramp_films
from helpers.nodes import known_clients
from pydicom.dataset import Dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from printscp.app.node import Node
from printscp.archive.films import ENCAPSULATED_PDF
from printscp.outputs.print_scu import print_films

pytestmark = pytest.mark.slow  # every test runs a node


def _store(port: int, ds: Dataset) -> None:
    assoc = associate(port, ds.SOPClassUID, calling="CT1")
    try:
        assert assoc.send_c_store(ds).Status == 0
    finally:
        assoc.release()


def _films_in_archive(node: Node) -> list[pydicom.Dataset]:
    archive = node.archive
    return [archive.read(r) for r in archive.instances() if r.sop_class_uid == ENCAPSULATED_PDF]


@pytest.mark.parametrize("label", ["ACC777", "P77", "NOTHING-KNOWN", ""])
def test_each_printed_job_is_an_encapsulated_pdf_linked_by_its_label(make_node, tmp_path,
                                                                       label):
    node = make_node()
    try:
        study = Study("P77", "KNEE^KATE", "20261101", "ACC777")
        _store(node.port, instance(study, 0, 1))
        print_films(ramp_films(2), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="CT1",
                    session={"FilmSessionLabel": label} if label else None, collate=True)
        assert node.spool.wait_idle(60)
        [doc] = _films_in_archive(node)
    finally:
        node.stop()
    pdf = bytes(doc.EncapsulatedDocument)
    assert pdf.startswith(b"%PDF") and doc.MIMETypeOfEncapsulatedDocument == "application/pdf"
    pdf_file = tmp_path / "film.pdf"
    pdf_file.write_bytes(pdf.rstrip(b"\0"))
    if shutil.which("pdfinfo"):
        assert pdf_pages(pdf_file)[0] == 2  # one page per film
    if label == "ACC777":  # the study with that Accession Number
        assert doc.StudyInstanceUID == study.study_uid and doc.PatientID == "P77"
        assert doc.AccessionNumber == "ACC777"
    elif label == "P77":  # that patient, a study of its own
        assert doc.PatientID == "P77" and str(doc.PatientName) == "KNEE^KATE"
        assert doc.StudyInstanceUID != study.study_uid
    else:  # a patient of prints, named after the calling AE
        assert doc.PatientID == "PRINTS-CT1" and str(doc.PatientName) == "PRINTS^CT1"
    assert doc.Modality == "DOC" and doc.SOPClassUID == ENCAPSULATED_PDF


@pytest.mark.dcmtk("findscu", "getscu")
def test_films_are_found_and_retrieved_like_any_instance(make_node, tmp_path):
    node = make_node(remote=known_clients("FINDSCU", "GETSCU"))
    try:
        print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="MR2",
                    session={"FilmSessionLabel": "BRAIN"})
        assert node.spool.wait_idle(60)
        res = subprocess.run([tool("findscu"), "-S", "-aec", "PRINTSCP",
                              "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=PRINTS-MR2",
                              "-k", "ModalitiesInStudy", "-k", "StudyInstanceUID",
                              "127.0.0.1", str(node.port)], capture_output=True, text=True)
        assert res.returncode == 0
        assert "DOC" in res.stderr + res.stdout
        out = tmp_path / "got"
        out.mkdir()
        [doc] = _films_in_archive(node)
        res = subprocess.run([tool("getscu"), "-S", "-aec", "PRINTSCP", "-od", str(out),
                              "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={doc.StudyInstanceUID}",
                              "127.0.0.1", str(node.port)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    finally:
        node.stop()
    [got] = list(out.iterdir())
    assert pydicom.dcmread(got).EncapsulatedDocument == doc.EncapsulatedDocument


def test_c_find_on_the_film_series(make_node, client):
    node = make_node(remote=known_clients("Q"))
    try:
        print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="US3")
        assert node.spool.wait_idle(60)
        assoc = client(node.port, StudyRootQueryRetrieveInformationModelFind, calling="Q")
        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY"
        ident.PatientID = "PRINTS-US3"
        ident.StudyDescription = ""
        ident.NumberOfStudyRelatedInstances = ""
        model = StudyRootQueryRetrieveInformationModelFind
        rsps = [ds for st, ds in assoc.send_c_find(ident, model) if st.Status == 0xFF00]
        assoc.release()
    finally:
        node.stop()
    assert [(r.StudyDescription, r.NumberOfStudyRelatedInstances) for r in rsps] == [
        ("Printed films", 1)]


@pytest.mark.parametrize("how", ["label", "started"])
def test_films_join_the_worklist_order(make_node, how):
    """A film printed with the order's Accession Number as label, or printed by the
    modality while the order's step is STARTED (after MPPS N-CREATE), joins that order's
    patient and study, though no image of it is archived yet."""
    from printscp.worklist.importing import build_item

    node = make_node()
    try:
        study_uid = "1.2.826.0.1.3680043.8.498.4242"
        node.worklist.add(build_item({
            "patient_name": "ORDER^OLGA", "patient_id": "P42", "accession": "ACC42",
            "procedure_description": "US ABDOMEN", "modality": "US", "station_ae": "US3",
            "start_date": "20261126", "start_time": "1000", "study_uid": study_uid}))
        if how == "started":
            node.worklist.mark(accession="ACC42", status="IN PROGRESS")
        print_films(ramp_films(1), ("PRINTSCP", "127.0.0.1", node.port), calling_ae="US3",
                    session={"FilmSessionLabel": "ACC42"} if how == "label" else None)
        assert node.spool.wait_idle(60)
        [doc] = _films_in_archive(node)
    finally:
        node.stop()
    assert doc.PatientID == "P42" and str(doc.PatientName) == "ORDER^OLGA"
    assert doc.StudyInstanceUID == study_uid and doc.AccessionNumber == "ACC42"
