"""Doubles of pynetdicom's association for the tests of the loops' races.

The races :mod:`printscp.net.reactors` closes happen between two threads within a few
microseconds; these doubles play an association exactly at the bad moment, so that a
test reproduces the race every time.  They stand in pynetdicom's private names, which
is why they live here, in the one package allowed to know them.
"""

from __future__ import annotations

import queue
import threading
from types import SimpleNamespace
from typing import Any

from printscp.net import reactors


class RacingCheckpoint:
    """The reactor's checkpoint, with a sender that parks it at the worst moment: just
    after the reactor has passed it, the sender clears it, reads the reactor's "paused"
    of a moment ago, sends, and its response is already queued."""

    def __init__(self, assoc: IdleAssociation) -> None:
        self.assoc = assoc
        self._set = True
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits == 1:
            assert self.assoc._is_paused  # what the sender read
            self._set = False
            self.assoc.dimse.msg_queue.put((1, "C-STORE-RSP for the sender"))
            return True  # the reactor had passed already
        self.assoc._kill = True  # the test is over at the next turn
        return self.waits > 2

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False


class IdleAssociation:
    """As much of an established, idle pynetdicom association as its reactor looks at
    (a C-MOVE sub-association between two C-STOREs), with a :class:`RacingCheckpoint`.
    ``served`` lists the messages the reactor served."""

    def __init__(self) -> None:
        msg_queue: queue.Queue[Any] = queue.Queue()

        def get_msg(block: bool = False) -> Any:
            try:
                return msg_queue.get(block=block)
            except queue.Empty:
                return None, None

        self.dimse = SimpleNamespace(msg_queue=msg_queue, get_msg=get_msg)
        self.dul = SimpleNamespace(to_user_queue=queue.Queue(), is_alive=lambda: True,
                                   idle_timer_expired=lambda: False)
        self.acse = SimpleNamespace(is_release_requested=lambda: False,
                                    is_aborted=lambda *_: False)
        self.is_established = True
        self.is_requestor = False
        self._kill = False
        self._is_paused = False
        self._reactor_checkpoint = RacingCheckpoint(self)
        self.served: list[object] = []

    def _serve_request(self, msg: object, context_id: int) -> None:
        self.served.append(msg)

    def kill(self) -> None:
        self._kill = True


def run_association_reactor(assoc: Any) -> None:
    """Run printscp's association reactor on ``assoc`` (a double) until it stops."""
    reactors._assoc_run_reactor(assoc)


class EndedAssociation:
    """An association whose peer has gone: killed, no longer established, its reactor
    ended (``paused`` as it was left), its checkpoint open."""

    def __init__(self, paused: bool) -> None:
        self._is_paused = paused
        self._kill = True
        self.is_established = False
        self._reactor_checkpoint = threading.Event()
        self._reactor_checkpoint.set()  # open, as when no send_*() is waiting

    def checkpoint_open(self) -> bool:
        return self._reactor_checkpoint.is_set()


class AbortQueuedAssociation:
    """An association whose peer has aborted while a sender kept its reactor parked: the
    A-ABORT waits in the queue for the reactor, so the association still reads
    established.  ``sent`` records what reached pynetdicom's own ``send_c_store``."""

    def __init__(self) -> None:
        self._kill = False
        self.is_established = True
        self.dul = SimpleNamespace(to_user_queue=queue.Queue(), is_alive=lambda: True)
        self.dul.to_user_queue.put("A-ABORT")
        self.sent: list[Any] = []

    def send_c_store(self, *args: Any) -> Any:
        self.sent.append(args)
        raise AssertionError("a C-STORE was sent on an aborted association")


def send_files_as_they_are(monkeypatch: Any) -> None:
    """Have pynetdicom send a C-STORE given as a file path straight from the file, as
    written (its ``STORE_SEND_CHUNKED_DATASET``), without decoding and re-encoding it:
    a test sends data sets pydicom would refuse or repair (a 2,000-deep sequence)."""
    from pynetdicom import _config

    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


def pdu_class(pdu_type: int) -> Any:
    """pynetdicom's PDU class for a PDU type (1-7), as the DUL thread decodes it with:
    fuzz tests feed its ``decode`` every byte string."""
    from pynetdicom.dul import _PDU_TYPES

    return _PDU_TYPES[bytes([pdu_type])][0]
