"""The calibration QA program: devices, acceptance and constancy tests, trends, film QC.

One set of measurements checked against the GSDF is :mod:`calibration.analysis`; a QA
program keeps doing it.  A device (a display or a printer profile) gets an acceptance
test when it is installed and constancy tests on a schedule; each test is judged against
a criteria set (:mod:`calibration.qa.criteria`), compared with the device's baseline,
and kept for good in the QA store (:mod:`calibration.qa.store`), from which the status
(what is overdue) and the reports with their trend plots are made.

Pure logic and files, like the rest of :mod:`calibration`.  May import: :mod:`lut`, the
rest of :mod:`calibration`, numpy, matplotlib, reportlab, pydicom, PIL and
:mod:`printscp.core` (atomic writes, fsync); never the layers above (the ``printscp qa``
command lives in :mod:`printscp.app.cli.qa`).
"""
