"""The archive: stored instances, their index and C-FIND matching, kept apart from the network."""
