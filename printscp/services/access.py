"""Association access rules: which calling AE titles (from which hosts) may associate.

Pure policy, no networking: :meth:`AccessPolicy.check` says whether an
A-ASSOCIATE-RQ is accepted, and if not, with which A-ASSOCIATE-RJ result, source
and reason (PS3.8 9.3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

#: (result, source, reason): rejected-permanent, DICOM UL service-user.
REJECT_CALLING_AE = (0x01, 0x01, 0x03)  #: calling-AE-title-not-recognized
REJECT_CALLED_AE = (0x01, 0x01, 0x07)  #: called-AE-title-not-recognized


@dataclass(frozen=True)
class AccessPolicy:
    """``calling`` entries are ``AE`` (any host) or ``AE@host``; empty allows anyone.
    ``ae_titles`` are the called AE titles the node answers to (one per printer)."""

    ae_titles: tuple[str, ...]
    calling: tuple[str, ...] = ()
    require_called_ae: bool = False

    def check(self, calling_ae: str, called_ae: str, host: str) -> tuple[int, int, int] | None:
        """None to accept, else the (result, source, reason) to reject with."""
        if self.require_called_ae and called_ae.strip() not in self.ae_titles:
            return REJECT_CALLED_AE
        if not self.calling:
            return None
        calling_ae = calling_ae.strip()
        for entry in self.calling:
            title, _, allowed_host = entry.partition("@")
            if title.strip() == calling_ae and (not allowed_host or allowed_host == host):
                return None
        return REJECT_CALLING_AE
