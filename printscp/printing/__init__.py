"""Print Management domain: film objects, layout, rendering and output.

Pure logic: nothing here imports pynetdicom, so layout and rendering are testable
without a network.  The services layer turns DIMSE requests into these objects.
"""
