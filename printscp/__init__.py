"""printscp: a DICOM Print SCP with PS3.14 (GSDF) film rendering."""

__version__ = "0.1.0"
