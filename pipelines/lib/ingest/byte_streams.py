"""A text landing file as a stream of byte pieces: plain, or gzip decompressed.

The gzip path is why this is more than `gzip.open`: it counts what it decompresses and
stops at a limit (a gzip bomb expands ~1000x), and it salvages everything that
decompresses before a fault (gzip's own reader drops what it had buffered). The head of
every text file is sniffed, so binary data or UTF-16/UTF-32 text is refused up front.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from pipelines.lib.ingest.chunks import BrokenFileError

PIECE_BYTES = 64 * 1024
SNIFF_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
)


class TooLarge(Exception):
    """A compressed stream expanded past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def plain_pieces(handle: BinaryIO) -> Iterator[bytes]:
    """The file's bytes in pieces of at most PIECE_BYTES."""
    while piece := handle.read(PIECE_BYTES):
        yield piece


def gunzip_pieces(handle: BinaryIO, limit: int) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file, counted as they are produced: they stop at
    `limit` (TooLarge), so a bomb never expands further."""
    produced = 0
    for out in _inflate(handle):
        if produced + len(out) > limit:
            yield out[: limit - produced]
            raise TooLarge(limit)
        produced += len(out)
        yield out


def _inflate(handle: BinaryIO) -> Iterator[bytes]:
    """Decompressed pieces of at most PIECE_BYTES (members concatenated, zero padding after
    a member ignored, as gzip does). Everything that decompresses before a fault is
    yielded before the fault is raised: gzip's own reader drops what it had buffered."""
    decompressor = None
    members = 0
    while block := handle.read(PIECE_BYTES):
        data = block
        while True:
            if decompressor is None:
                if members:
                    data = data.lstrip(b"\x00")
                if not data:
                    break
                decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                members += 1
            saved = decompressor.copy()  # cheap (~2 us): the state to redo a failed call from
            try:
                out = decompressor.decompress(data, PIECE_BYTES)
            except zlib.error:
                yield from _before_fault(saved, data)
                raise
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = None
                continue
            data = decompressor.unconsumed_tail
            if not data and len(out) < PIECE_BYTES:
                break  # all input used and nothing held back: read more
    if decompressor is not None:
        raise EOFError("the compressed stream ends before its end-of-stream marker")


def _before_fault(decompressor: Any, data: bytes) -> Iterator[bytes]:
    """What `data` decompresses to before the fault, fed a byte at a time: a failing call
    returns nothing of what it decompressed (e.g. a bad checksum after the last block)."""
    out = bytearray()
    for index in range(len(data)):
        try:
            out += decompressor.decompress(data[index : index + 1])
        except zlib.error:
            break
        if len(out) >= PIECE_BYTES:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


def sniffed(pieces: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The pieces, after refusing binary data or text in another encoding up front. A
    fault while reading the head is raised only after the head was passed on."""
    head: list[bytes] = []
    size = 0
    fault: Exception | None = None
    try:
        for piece in pieces:
            head.append(piece)
            size += len(piece)
            if size >= SNIFF_BYTES:
                break
    except Exception as exc:  # re-raised below, once the readable head is out
        fault = exc
    reject_binary(b"".join(head), what)
    yield from head
    if fault is not None:
        raise fault
    yield from pieces


def reject_binary(head: bytes, what: str) -> None:
    """Raise not_text if the file's head shows it is not UTF-8 text (`what` names the format)."""
    for mark, encoding in _OTHER_BOMS:
        if head.startswith(mark):
            raise BrokenFileError(
                "not_text",
                f"file starts with a {encoding} byte-order mark: it is {encoding} text, and"
                f" {what} is read as UTF-8 only (save it as UTF-8)",
            )
    if b"\x00" in head[:SNIFF_BYTES]:
        raise BrokenFileError("not_text", f"file contains NUL bytes: binary data, not {what}", None)
