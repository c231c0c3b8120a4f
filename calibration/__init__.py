"""GSDF calibration measurement analysis for displays and printers (built on ``lut``)."""
