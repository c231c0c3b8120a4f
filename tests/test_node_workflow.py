"""A modality's day on one printscp node: worklist, MPPS, storage, commitment, print.

The worklist item follows the performed step (STARTED, then gone from the list), MPPS
completeness counts the images that arrived, and the images are committed."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from helpers.archive_data import Study, instance
from helpers.mpps import completion, create_ds, series_item
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
)

from printscp.services.commitment import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from printscp.worklist.importing import build_item


def _worklist(assoc, station: str) -> list[Dataset]:
    ident = Dataset()
    ident.PatientName = ""
    ident.PatientID = ""
    ident.AccessionNumber = ""
    ident.StudyInstanceUID = ""
    sps = Dataset()
    sps.ScheduledStationAETitle = station
    sps.ScheduledProcedureStepStatus = ""
    sps.ScheduledProcedureStepID = ""
    sps.Modality = ""
    ident.ScheduledProcedureStepSequence = [sps]
    return [ds for st, ds in assoc.send_c_find(ident, ModalityWorklistInformationFind)
            if st.Status == 0xFF00]


@pytest.mark.slow
def test_worklist_mpps_storage_commitment_on_one_node(node, client):
    try:
        study = Study("P1", "DOE^JANE", "20261126", "ACC1", images=2)
        node.worklist.add(build_item({
            "patient_name": "DOE^JANE", "patient_id": "P1", "accession": "ACC1",
            "procedure_id": "RP1", "procedure_description": "CT CHEST", "modality": "CT",
            "station_ae": "CT1", "start_date": "20261126", "start_time": "0930",
            "sps_id": "SPS1", "study_uid": study.study_uid}))
        reports: list[Dataset] = []
        arrived = threading.Event()

        def on_report(event):
            reports.append(event.event_information)
            arrived.set()
            return 0x0000, None

        assoc = client(node.port, ModalityWorklistInformationFind,
                       ModalityPerformedProcedureStep, STORAGE_COMMITMENT,
                       "1.2.840.10008.5.1.4.1.1.2", calling="CT1",
                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        try:
            [item] = _worklist(assoc, "CT1")
            assert item.AccessionNumber == "ACC1"
            assert item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus \
                == "SCHEDULED"
            pps_uid = generate_uid()
            status, _ = assoc.send_n_create(
                create_ds(study.study_uid, "ACC1", PerformedStationAETitle="CT1"),
                ModalityPerformedProcedureStep, pps_uid)
            assert status.Status == 0x0000
            [item] = _worklist(assoc, "CT1")
            assert item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus \
                == "STARTED"
            images = [instance(study, 0, i) for i in (1, 2)]
            assert assoc.send_c_store(images[0]).Status == 0  # one of two arrives
            series = [series_item(study.series_uids[0], [d.SOPInstanceUID for d in images])]
            status, _ = assoc.send_n_set(completion(series), ModalityPerformedProcedureStep,
                                         pps_uid)
            assert status.Status == 0x0000
            assert _worklist(assoc, "CT1") == []  # done: hidden from the list
            action = Dataset()
            action.TransactionUID = generate_uid()
            refs = []
            for d in images:
                ref = Dataset()
                ref.ReferencedSOPClassUID = d.SOPClassUID
                ref.ReferencedSOPInstanceUID = d.SOPInstanceUID
                refs.append(ref)
            action.ReferencedSOPSequence = refs
            status, _ = assoc.send_n_action(action, 1, STORAGE_COMMITMENT,
                                            STORAGE_COMMITMENT_INSTANCE)
            assert status.Status == 0x0000
            assert arrived.wait(10)
        finally:
            assoc.release()
    finally:
        node.stop()
    [report] = reports
    assert [r.ReferencedSOPInstanceUID for r in report.ReferencedSOPSequence] == [
        images[0].SOPInstanceUID]
    assert [(f.ReferencedSOPInstanceUID, f.FailureReason) for f in report.FailedSOPSequence] \
        == [(images[1].SOPInstanceUID, 0x0112)]
    listing = subprocess.run([sys.executable, "-m", "printscp", "mpps", "list", "--data-dir",
                              str(node.config.data_path)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "COMPLETED" in listing.stdout and "1/2" in listing.stdout
