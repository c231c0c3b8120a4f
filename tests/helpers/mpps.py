"""MPPS data sets as a modality sends them: the N-CREATE of a step, its series, the
final N-SET."""

from __future__ import annotations

from pydicom.dataset import Dataset

#: A value for :func:`create_ds` that leaves the attribute out.
DELETE = object()


def create_ds(study_uid: str = "1.2.3.4", accession: str = "ACC1", **changes: object
              ) -> Dataset:
    """An N-CREATE attribute list with every Type 1 and 2 attribute of Table F.7.2-1."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedStudySequence = []
    item.AccessionNumber = accession
    item.RequestedProcedureID = "RP1"
    item.RequestedProcedureDescription = "CT CHEST"
    item.ScheduledProcedureStepID = "SPS1"
    item.ScheduledProcedureStepDescription = "CHEST"
    item.ScheduledProtocolCodeSequence = []
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "P1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT1"
    ds.PerformedStationName = "CT ROOM 1"
    ds.PerformedLocation = "RAD"
    ds.PerformedProcedureStepStartDate = "20240501"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT CHEST"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = None
    ds.PerformedProcedureStepEndTime = None
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    for keyword, value in changes.items():
        if value is DELETE:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds



def series_item(series_uid: str, sop_uids: list[str], sop_class: str = "1.2.840.10008.5.1.4.1.1.2"
                ) -> Dataset:
    item = Dataset()
    item.PerformingPhysicianName = ""
    item.ProtocolName = "CHEST ROUTINE"
    item.OperatorsName = ""
    item.SeriesInstanceUID = series_uid
    item.SeriesDescription = "AXIAL"
    item.RetrieveAETitle = ""
    refs = []
    for uid in sop_uids:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = uid
        refs.append(ref)
    item.ReferencedImageSequence = refs
    item.ReferencedNonImageCompositeSOPInstanceSequence = []
    return item


def completion(series: list[Dataset], status: str = "COMPLETED") -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240501"
    ds.PerformedProcedureStepEndTime = "104500"
    ds.PerformedSeriesSequence = series
    return ds
