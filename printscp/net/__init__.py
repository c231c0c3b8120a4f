"""The network layer: the only package that knows pynetdicom's private names.

Being reshaped (issue 15): version gate, association hooks and the small interface the
services use come next.
"""

from printscp.net.workarounds import guard_requestor

__all__ = ["guard_requestor"]
