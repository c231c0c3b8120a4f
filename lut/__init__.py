"""Pure numpy look-up-table math for DICOM PS3.14 (no networking, no DICOM I/O).

Modules:
    gsdf          the Grayscale Standard Display Function, L(j) and j(L)
    density       hardcopy: optical density <-> luminance, P-value -> density
    presentation  Presentation LUTs (IDENTITY, LIN OD, explicit tables)
    voi           Modality/VOI windowing to P-value-ready pixel values
    device        device characteristic curves (DCMTK files) and calibration LUTs

The lowest layer beside printscp.core: may import numpy only (no pydicom, no
pynetdicom, nothing of printscp or calibration).
"""
