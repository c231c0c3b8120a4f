"""PDUs and A-ASSOCIATE items from a hostile peer, sent to a live node on loopback.

Every example must be answered (A-ASSOCIATE-AC/-RJ, A-ABORT, A-RELEASE-RP) or the
connection closed within :data:`wire.ANSWER_BOUND`, never logged as a traceback, and the
node must still answer C-ECHO afterwards.  The decoders are also fed in-process, where
thousands of examples cost little: pynetdicom's PDU classes (as printscp patches them)
and :mod:`printscp.net.pdata`'s P-DATA parser may only raise their documented errors.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz import strategies as fst
from fuzz import wire

pytestmark = pytest.mark.slow  # each test starts a node and talks to it


@given(fst.associate_requests())
def test_a_associate_rq_items_are_answered_at_once(live, rq):
    with wire.Peer(live.port) as peer:
        peer.send(rq)
        answer = peer.read_pdu()
        assert answer.kind in ("A-ASSOCIATE-AC", "A-ASSOCIATE-RJ", "A-ABORT"), answer
        assert answer.seconds < wire.ANSWER_BOUND
        if answer.kind == "A-ASSOCIATE-AC":
            ending = peer.release()
            assert ending.kind in ("A-RELEASE-RP", "A-ABORT"), ending
    live.check_up()


@given(st.binary(min_size=1, max_size=300))
def test_random_bytes_before_association_end_in_an_answer_or_close(live, data):
    with wire.Peer(live.port) as peer:
        peer.send(data)
        peer.finish()  # no more bytes: an incomplete PDU cannot hold the node waiting
        answer = peer.drain()
        assert answer.kind != "timeout", answer
    live.check_up(echo=False)


@given(st.lists(st.one_of(fst.any_pdu, fst.pdata_pdus()), min_size=1, max_size=3))
def test_pdus_on_an_established_association(live, pdus):
    """Unknown types, P-DATA with broken PDVs, a second A-ASSOCIATE-RQ, stray ACs...:
    the association is aborted (PS3.8 9.3.1: A-ABORT source 2) or goes on; a release
    after them is answered either way."""
    with wire.Peer(live.port) as peer:
        assert peer.associate([wire.context_item(1)]).kind == "A-ASSOCIATE-AC"
        for data in pdus:
            if not peer.send(data):
                break
        peer.send(wire.release_rq())
        peer.finish()
        answer = peer.drain()
        assert answer.kind in ("A-RELEASE-RP", "A-ABORT", "closed"), answer
        if answer.kind == "A-ABORT":
            assert answer.abort[0] in (0, 2), answer.abort  # service user or provider
    live.check_up(echo=False)


# -- in-process decoders ------------------------------------------------------------------
@pytest.mark.parametrize("kind", range(1, 8))
@given(body=st.binary(max_size=400))
def test_pynetdicom_pdu_decoders_fail_only_as_they_should(kind, body):
    """What the DUL thread calls for every PDU (``_decode_pdu``): any exception it raises
    becomes Evt19 (A-ABORT), so it need only end, without exhausting memory or the
    stack, whatever the bytes."""
    from printscp.net import reactors
    from printscp.net.testing import pdu_class

    reactors.install()
    cls = pdu_class(kind)
    data = wire.pdu(kind, body)
    try:
        cls().decode(data)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # the DUL turns any other into Evt19: an A-ABORT
        pass


@given(fst.associate_requests())
def test_associate_rq_decoder_in_process(rq):
    from pynetdicom.pdu import A_ASSOCIATE_RQ

    try:
        A_ASSOCIATE_RQ().decode(rq)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # the DUL turns any other into Evt19: an A-ABORT
        pass


@given(fst.pdata_pdus(), st.lists(st.integers(0, 400), max_size=4))
def test_pdata_parser_raises_only_pdataerror(pdu, _):
    """:func:`printscp.net.pdata.pdvs` and the message assembler: a malformed P-DATA is a
    :class:`~printscp.net.pdata.PDataError` (the association aborts), nothing else."""
    from printscp.net import pdata

    assembler = pdata.MessageAssembler()
    try:
        for context_id, control, fragment in pdata.pdvs(memoryview(pdu[6:])):
            if assembler.add(context_id, control, fragment):
                assembler = pdata.MessageAssembler()
    except pdata.PDataError:
        pass
