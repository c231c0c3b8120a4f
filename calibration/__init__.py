"""Calibration of displays and printers against the GSDF (PS3.14): measurements in
(photometer and densitometer readings, DCMTK characteristic files), conformance out,
and the LUTs, printer profiles, test patterns and reports that follow from them.

Pure logic, built on :mod:`lut`. May import: :mod:`lut`, numpy and matplotlib; never
:mod:`printscp` (the ``printscp calibrate`` command lives in
:mod:`printscp.app.cli.calibrate`).
"""
