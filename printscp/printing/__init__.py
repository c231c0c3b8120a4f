"""Print Management domain: film objects, layout, rendering and output.

Pure logic: nothing here imports pynetdicom, so layout and rendering are testable
without a network.  The services layer turns DIMSE requests into these objects.

May import: :mod:`printscp.core`, :mod:`lut`, numpy, pydicom, Pillow and reportlab;
never pynetdicom, :mod:`printscp.net` or the layers above (jobs, outputs, services).
"""
