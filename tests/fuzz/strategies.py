"""Hypothesis strategies for what a hostile peer sends: A-ASSOCIATE-RQ items with
wrong lengths and odd UIDs, PDUs of every type, command sets, data sets.

Each strategy draws mostly near-valid input (a valid structure with one or two things
wrong), which reaches deeper into the decoders than random bytes do.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from fuzz import wire

KNOWN_UIDS = [wire.VERIFICATION, wire.IMPLICIT_LE, wire.EXPLICIT_LE, wire.CT_IMAGE,
              wire.SECONDARY_CAPTURE, wire.STUDY_ROOT_FIND, wire.GRAYSCALE_PRINT_META,
              "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.5.1.1.1"]

#: UID-ish values: known ones, empty, too long, traversal, NULs, non-ASCII, spaces.
uid_bytes = st.one_of(
    st.sampled_from([u.encode() for u in KNOWN_UIDS]),
    st.sampled_from([b"", b"\0", b" ", b"1" * 65, b"1." * 40, b"../../x", b"/etc/passwd",
                     b"1.2.3\0\0", b"\xff\xfe", b"1..2", b"01.2"]),
    st.binary(max_size=80),
    st.text(alphabet="0123456789.", max_size=70).map(str.encode),
)


@st.composite
def lengths(draw: st.DrawFn, true: int) -> int | None:
    """Mostly the true length; sometimes short of it, beyond it, 0 or 0xFFFF."""
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return None
    return draw(st.sampled_from([0, max(0, true - 1), true + 1, true + 100, 0xFFFF]))


@st.composite
def sub_item(draw: st.DrawFn, kind: int) -> bytes:
    value = draw(uid_bytes)
    return wire.item(kind, value, draw(lengths(len(value))))


@st.composite
def context_items(draw: st.DrawFn) -> bytes:
    """One presentation context item, perhaps with wrong IDs, lengths, sub-items."""
    context_id = draw(st.one_of(st.sampled_from([1, 3, 5, 127, 255]),
                                st.integers(0, 255)))
    subs = b""
    if draw(st.booleans()) or True:
        subs += draw(sub_item(0x30))
    for _ in range(draw(st.integers(0, 3))):
        subs += draw(sub_item(0x40))
    if draw(st.integers(0, 9)) == 0:
        subs += draw(st.binary(max_size=12))  # trailing bytes that are no sub-item
    payload = bytes([context_id, 0, draw(st.integers(0, 255)), 0]) + subs
    if draw(st.integers(0, 9)) == 0:
        payload = payload[:draw(st.integers(0, len(payload)))]  # truncated
    return wire.item(draw(st.sampled_from([0x20, 0x20, 0x20, 0x21, 0x22])), payload,
                     draw(lengths(len(payload))))


@st.composite
def user_items(draw: st.DrawFn) -> bytes:
    """A user information item: Maximum Length, Implementation UID/Version, roles,
    asynchronous operations, extended negotiation, identity, or garbage."""
    subs = []
    if draw(st.integers(0, 4)):
        value = struct.pack(">L", draw(st.sampled_from([0, 1, 6, 4096, 16384, 0xFFFFFFFF])))
        subs.append(wire.item(0x51, value[:draw(st.sampled_from([4, 4, 4, 2, 0]))]))
    if draw(st.integers(0, 4)):
        subs.append(draw(sub_item(0x52)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x99]))
        if kind == 0x54:  # SCP/SCU role selection
            uid = draw(uid_bytes)
            value = (struct.pack(">H", draw(st.sampled_from([len(uid), 0, len(uid) + 5])))
                     + uid + bytes([draw(st.integers(0, 2)), draw(st.integers(0, 2))]))
        elif kind == 0x53:
            value = draw(st.binary(min_size=0, max_size=6))
        elif kind == 0x58:  # user identity
            primary = draw(st.binary(max_size=20))
            value = (bytes([draw(st.integers(0, 6)), draw(st.integers(0, 1))])
                     + struct.pack(">H", len(primary)) + primary + struct.pack(">H", 0))
        else:
            value = draw(st.binary(max_size=40))
        subs.append(wire.item(kind, value, draw(lengths(len(value)))))
    payload = b"".join(subs)
    return wire.item(draw(st.sampled_from([0x50, 0x50, 0x50, 0x51])), payload,
                     draw(lengths(len(payload))))


@st.composite
def associate_requests(draw: st.DrawFn) -> bytes:
    """A whole A-ASSOCIATE-RQ PDU whose own length is right (the items inside may lie)."""
    contexts = draw(st.lists(context_items(), min_size=0, max_size=6))
    if draw(st.integers(0, 3)) == 0:
        contexts.insert(0, wire.context_item(1))  # one sound context among the rest
    application = draw(st.one_of(st.just(wire.APPLICATION_CONTEXT.encode()), uid_bytes))
    body = (struct.pack(">HH", draw(st.sampled_from([1, 1, 1, 0, 2, 0xFFFF])), 0)
            + draw(st.sampled_from([b"PRINTSCP", b"", b" " * 16, b"\0" * 16, b"\xff" * 16])
                   ).ljust(16)[:16]
            + draw(st.sampled_from([b"FUZZER", b"", b"\x00\x01", b"A" * 16])).ljust(16)[:16]
            + bytes(32))
    items = [wire.item(0x10, application, draw(lengths(len(application))))]
    items += contexts
    if draw(st.integers(0, 5)):
        items.append(draw(user_items()))
    if draw(st.integers(0, 9)) == 0:
        items = draw(st.permutations(items))
    body += b"".join(items)
    if draw(st.integers(0, 9)) == 0:
        body += draw(st.binary(max_size=20))
    return wire.pdu(0x01, body)


#: Any PDU type (known or not) with a body of its own length.
any_pdu = st.builds(lambda kind, body: wire.pdu(kind, body),
                    st.one_of(st.integers(1, 7), st.integers(0, 255)),
                    st.binary(max_size=200))


@st.composite
def pdata_pdus(draw: st.DrawFn, context_ids: tuple[int, ...] = (1,)) -> bytes:
    """A P-DATA-TF PDU with PDVs of right or wrong lengths, odd control headers."""
    pdvs = []
    for _ in range(draw(st.integers(0, 4))):
        value = draw(st.binary(max_size=64))
        true = len(value) + 2
        length = draw(st.one_of(st.just(true), st.sampled_from([0, 1, true + 1, true - 1,
                                                                0xFFFFFFFF])))
        pdvs.append(wire.pdv(draw(st.one_of(st.sampled_from(context_ids),
                                            st.integers(0, 255))),
                             draw(st.sampled_from([0, 1, 2, 3, 3, 3, 0xFF, 0x04])),
                             value, length))
    body = b"".join(pdvs)
    if draw(st.integers(0, 9)) == 0:
        body = body[:draw(st.integers(0, len(body)))]
    return wire.pdu(0x04, body)


# -- command sets ----------------------------------------------------------------------
COMMAND_FIELDS = [0x0001, 0x0010, 0x0020, 0x0021, 0x0030, 0x0100, 0x0110, 0x0120, 0x0130,
                  0x0140, 0x0150, 0x0FFF, 0x8001, 0x8030, 0x0000, 0xFFFF]


@st.composite
def command_sets(draw: st.DrawFn, sop_class: str = wire.VERIFICATION) -> tuple[bytes, bool]:
    """(command set bytes, whether a data set follows): plausible elements with wrong
    values, missing ones, unknown ones, wrong lengths, or raw garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=120)), draw(st.booleans())
    elements: dict[int, bytes] = {}
    if draw(st.integers(0, 5)):
        elements[0x0002] = wire.ui(draw(st.one_of(st.just(sop_class.encode()), uid_bytes)))
    if draw(st.integers(0, 7)):
        elements[0x0100] = draw(st.one_of(
            st.sampled_from(COMMAND_FIELDS).map(wire.us), st.binary(max_size=4)))
    if draw(st.integers(0, 7)):
        elements[0x0110] = draw(st.one_of(st.integers(0, 0xFFFF).map(wire.us),
                                          st.binary(max_size=4)))
    for tag in draw(st.lists(st.sampled_from(
            [0x0003, 0x0120, 0x0600, 0x0700, 0x0900, 0x1000, 0x1001, 0x1005, 0x1008,
             0x1030, 0x1031, 0x5010, 0x4000]), max_size=4)):
        elements[tag] = draw(st.one_of(uid_bytes, st.binary(max_size=8)))
    with_data = draw(st.booleans())
    data_set_type = draw(st.sampled_from([0x0101 if not with_data else 0x0001, 0x0000,
                                          0xFFFF, 0x0102]))
    if draw(st.integers(0, 9)):
        elements[0x0800] = wire.us(data_set_type)
    encoded = wire.command(elements)
    if draw(st.integers(0, 7)) == 0:  # a lying group length or element length
        at = draw(st.integers(0, max(0, len(encoded) - 4)))
        encoded = encoded[:at] + struct.pack("<L", draw(st.sampled_from(
            [0, 1, 0xFFFFFFFF, 0xFFFF]))) + encoded[at + 4:]
    return encoded, with_data and data_set_type != 0x0101


# -- data sets -------------------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, a slice cut or repeated, or lengths lied about."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5))
        if not out:
            out += draw(st.binary(min_size=1, max_size=16))
            continue
        at = draw(st.integers(0, len(out) - 1))
        if kind == 0:
            out[at] = draw(st.integers(0, 255))
        elif kind == 1:
            del out[at:at + draw(st.integers(1, 16))]
        elif kind == 2:
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == 3 and len(out) >= at + 4:
            out[at:at + 4] = struct.pack("<L", draw(st.sampled_from(
                [0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF, 0, 1, 3])))
        elif kind == 4:
            out = out[:at]
        else:
            out[at:at] = out[at:at + draw(st.integers(1, 32))]
    return bytes(out)
