"""Media types and multipart/related bodies of DICOMweb (PS3.18 8.7).

Accept headers name what a user agent takes: ``multipart/related; type="application/dicom";
transfer-syntax=*``, ``image/png``, ``*/*``... :func:`parse_accept` reads them (with their
quality factors) into :class:`MediaRange` values, highest preference first, so each
resource picks the first it can give and answers 406 when it can give none.
:func:`related` writes the parts of a multipart/related response (RFC 2387) as a stream,
so a study's files go out one after another and never sit in memory together.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from printscp.archive.archive import IMPLICIT
from printscp.archive.archive import NATIVE as ARCHIVE_NATIVE
from printscp.http.errors import ApiError

#: PS3.18 8.7 media types.
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
MULTIPART_RELATED = "multipart/related"
PNG = "image/png"
JPEG = "image/jpeg"
PDF = "application/pdf"

#: Explicit VR Little Endian: the default Transfer Syntax of application/dicom and of
#: uncompressed bulk data (PS3.18 Table 8.7.3-2).
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = IMPLICIT
#: Transfer Syntaxes whose pixel data are native (not encapsulated): the archive's table.
NATIVE = frozenset(ARCHIVE_NATIVE)

#: The media type of one frame of each encapsulated Transfer Syntax (PS3.18 Table 8.7.3-4).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": JPEG, "1.2.840.10008.1.2.4.51": JPEG,
    "1.2.840.10008.1.2.4.57": JPEG, "1.2.840.10008.1.2.4.70": JPEG,
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` and its parameters (lower-case
    names; ``q`` taken out as :attr:`quality`)."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0

    @property
    def related_type(self) -> str | None:
        """The ``type`` parameter of a multipart/related range (None: any)."""
        value = self.params.get("type")
        return value.lower() if value else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    def accepts(self, media_type: str) -> bool:
        """Whether ``media_type`` (not multipart) falls in this range."""
        main, _, sub = self.media_type.partition("/")
        want_main, _, want_sub = media_type.lower().partition("/")
        return main == "*" or (main == want_main and sub in ("*", want_sub))

    def takes_syntax(self, syntax: str) -> bool:
        """Whether a body in Transfer Syntax ``syntax`` satisfies this range."""
        wanted = self.transfer_syntax
        return wanted is None or wanted == "*" or wanted == syntax


def _split(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside double quotes."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def parse_accept(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, most preferred first (``*/*`` when absent).

    A range with q=0 is left out (RFC 9110 12.4.2: not acceptable)."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges: list[tuple[float, int, MediaRange]] = []
    for order, item in enumerate(_split(header, ",")):
        pieces = _split(item, ";")
        media_type = pieces[0].strip().lower()
        if not media_type:
            continue
        if "/" not in media_type:
            raise ApiError(400, f"Accept: {media_type!r} is not a media type", "header.accept")
        params: dict[str, str] = {}
        quality = 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    raise ApiError(400, f"Accept: q={value!r} is not a number",
                                   "header.accept") from None
            elif name:
                params[name] = value
        if quality > 0:
            ranges.append((-quality, order, MediaRange(media_type, params, quality)))
    ranges.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranges]


def not_acceptable(what: str, header: str | None) -> ApiError:
    """406 naming what the resource can give (PS3.18 8.3.3.1)."""
    return ApiError(406, f"cannot answer Accept: {header or '*/*'}; this resource is "
                    f"available as {what}", "header.accept")


def new_boundary() -> str:
    return "printscp-" + secrets.token_hex(16)


def related_content_type(part_type: str, boundary: str, transfer_syntax: str | None = None
                         ) -> str:
    """The Content-Type of a multipart/related response whose parts are ``part_type``."""
    value = f'{MULTIPART_RELATED}; type="{part_type}"; boundary={boundary}'
    if transfer_syntax:
        value += f"; transfer-syntax={transfer_syntax}"
    return value


def part_header(content_type: str, **headers: str) -> bytes:
    lines = [f"Content-Type: {content_type}"] + [
        f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


#: The body of a multipart response is sent in pieces of about this size.
PIECE = 1 << 20


def related(parts: Iterable[tuple[bytes, Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """The body of a multipart/related message: each part is (its header, made by
    :func:`part_header`, and its content in chunks), streamed in pieces of about
    :data:`PIECE` bytes.  Starlette hands each piece of a synchronous body to a worker
    thread and back: delimiters, headers and small files are gathered into one piece
    rather than sent one by one (four hand-offs per instance, before, for a CT study)."""
    sep = f"--{boundary}\r\n".encode("ascii")
    piece = bytearray()
    for header, chunks in parts:
        piece += sep + header
        for chunk in chunks:
            if piece and len(piece) + len(chunk) > PIECE:
                yield bytes(piece)
                piece.clear()
            if not piece and len(chunk) >= PIECE:
                yield chunk
            else:
                piece += chunk
        piece += b"\r\n"
    piece += f"--{boundary}--\r\n".encode("ascii")
    yield bytes(piece)


def split_related(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related ``body`` (tests, STOW): (headers, content)."""
    boundary = None
    for piece in _split(content_type, ";")[1:]:
        name, _, value = piece.partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise ValueError("multipart/related without a boundary")
    delimiter = b"--" + boundary.encode("ascii")
    out = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, content = chunk.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        out.append((headers, content))
    return out
