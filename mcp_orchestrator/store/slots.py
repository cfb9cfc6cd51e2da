"""Documents rewritten in place (store format 3): two checksummed slots in one file.

A document's file is one JSON value::

    {"schemaVersion":3,"slotBytes":"0000004096","a":<slot a>,"b":<slot b>}

Each slot is exactly ``slotBytes`` bytes: ``{"seq":"…","crc":"…","len":"…","doc":<the document>}`` padded
with spaces, or ``null`` padded. A change writes the new version into the slot that does not hold the
newest one, with the next ``seq``, in one ``pwrite``, then ``fdatasync``: no new file, no rename and no
deleted inode per change (on ext4 an inode's allocation costs 0.1-0.6 ms once many were deleted lately,
bench/scheduler.py ``disk``). The document is the slot with the highest ``seq`` whose crc32 (of its seq and
document) checks out. A write torn by a crash leaves the other slot, the version before it, which was
durable before the write began; a version never becomes visible until it is whole. A document that
outgrows its slots, or one of an older format, is written whole into a new file with larger slots
(temporary file, fsync, rename), as before.

The file's mtime moves forward on every change, set again once the new version is whole (the kernel stamps it
as the write begins, when a reader may still read the version before), so (mtime, size) still tells a reader
that a document changed, and a reader that stats before it reads never keeps a stamp with an older version.

An older release (format 2) parses the whole file as JSON, sees ``schemaVersion`` 3 and refuses the
document by name (``NewerDocument``) without quarantining it; only while a slot is half-written (or after
a crash tore one) does the file not parse as JSON for such a release.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from mcp_orchestrator.store._files import atomic_write

__all__ = [
    "FORMAT",
    "Slots",
    "TornDocument",
    "document",
    "file_bytes",
    "parse",
    "put",
    "put_open",
    "read_fd",
    "write_in_place",
]

FORMAT = 3
_HEAD = b'{"schemaVersion":3,"slotBytes":"'
_HEAD_END = b'","a":'
_SEP = b',"b":'
_TAIL = b"}\n"
_SIZE_DIGITS = 10
_A = len(_HEAD) + _SIZE_DIGITS + len(_HEAD_END)  # where slot a starts
_SLOT_OVERHEAD = len(b'{"seq":"","crc":"","len":"","doc":}') + 12 + 8 + 10
_PAGE = 4096
_ALIGN = 50  # a slot of k pages less this: each slot in pages of its own (``_slot_size``)


class TornDocument(ValueError):
    """A format-3 file in which no slot checks out."""


@dataclass(frozen=True)
class Slots:
    """What a format-3 file holds: its slot size, and its newest whole version (slot 0 or 1, seq, document)."""

    size: int
    slot: int
    seq: int
    doc: bytes


def _offset(size: int, slot: int) -> int:
    return _A if slot == 0 else _A + size + len(_SEP)


def _slot_bytes(seq: int, doc: bytes, size: int) -> bytes:
    seq_text = b"%012d" % seq
    crc = zlib.crc32(doc, zlib.crc32(seq_text))
    return (b'{"seq":"%s","crc":"%08x","len":"%010d","doc":%s}' % (seq_text, crc, len(doc), doc)).ljust(size)


def _slot_size(doc_len: int) -> int:
    """Room for the document and half as much again. The size is k pages less 50 bytes: the 48-byte header and
    5-byte separator then put slot a in pages 0..k-1 and slot b in pages k..2k-1, so a one-page slot's write
    touches one page (a kill -9 cannot tear it; the file stays one JSON value)."""
    need = (doc_len + _SLOT_OVERHEAD) * 3 // 2 + _ALIGN
    return -(-need // _PAGE) * _PAGE - _ALIGN


def file_bytes(doc: bytes, seq: int = 1) -> bytes:
    """A whole new format-3 file holding ``doc`` in slot a (slot b empty)."""
    size = _slot_size(len(doc))
    return b"".join([_HEAD, b"%010d" % size, _HEAD_END, _slot_bytes(seq, doc, size), _SEP, b"null".ljust(size), _TAIL])


def _read_slot(raw: bytes) -> tuple[int, bytes] | None:
    if not raw.startswith(b'{"seq":"') or len(raw) < _SLOT_OVERHEAD:
        return None
    try:
        seq_text = raw[8:20]
        crc = int(raw[29:37], 16)
        length = int(raw[46:56])
    except ValueError:
        return None
    doc = raw[64 : 64 + length]
    if len(doc) != length or raw[64 + length : 65 + length] != b"}" or zlib.crc32(doc, zlib.crc32(seq_text)) != crc:
        return None
    return int(seq_text), doc


def parse(data: bytes) -> Slots | None:
    """The newest whole version in a format-3 file; None when ``data`` is not one. ``TornDocument`` when it is
    one in which no slot checks out."""
    if not data.startswith(_HEAD):
        return None
    try:
        size = int(data[len(_HEAD) : len(_HEAD) + _SIZE_DIGITS])
    except ValueError:
        raise TornDocument("its header does not parse") from None
    best: Slots | None = None
    for slot in (0, 1):
        start = _offset(size, slot)
        found = _read_slot(data[start : start + size])
        if found is not None and (best is None or found[0] > best.seq):
            best = Slots(size, slot, found[0], found[1])
    if best is None:
        raise TornDocument("neither of its two slots checks out")
    return best


def document(data: bytes) -> bytes:
    """The document a file holds, whatever its format (``TornDocument`` for a format-3 one that is torn)."""
    found = parse(data)
    return data if found is None else found.doc


def write_in_place(fd: int, current: Slots, doc: bytes, *, fsync: bool) -> bool:
    """Write ``doc`` as the next version into the other slot of the open file ``fd``; False (nothing
    written) when it does not fit there."""
    if len(doc) + _SLOT_OVERHEAD > current.size:
        return False
    slot = 1 - current.slot
    data = memoryview(_slot_bytes(current.seq + 1, doc, current.size))
    before = os.fstat(fd).st_mtime_ns
    offset = _offset(current.size, slot)
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n
    # The kernel stamps the mtime as the write begins: a reader that stats then reads meanwhile may see the new
    # stamp with the old version. So the stamp moves on again once the version is whole (and past a coarse clock).
    after = os.fstat(fd)
    os.utime(fd, ns=(after.st_atime_ns, max(time.time_ns(), after.st_mtime_ns + 1, before + 1)))
    if fsync:
        os.fdatasync(fd)
    return True


def put(path: Path, doc: bytes, *, fsync: bool) -> None:
    """Store ``doc`` at ``path``: in place when it is a format-3 file with room, else as a new file.

    The caller holds the document's lock (or is its only writer)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        atomic_write(path, file_bytes(doc), fsync=fsync)
        return
    try:
        put_open(path, fd, read_fd(fd), doc, fsync=fsync)
    finally:
        os.close(fd)


def put_open(path: Path, fd: int, data: bytes, doc: bytes, *, fsync: bool) -> None:
    """``put`` for a document the caller has open as ``fd`` (under its lock) and has read as ``data``."""
    try:
        current = parse(data)
    except TornDocument:
        current = None  # rewritten whole: the caller decided what the document is
    if current is None or not write_in_place(fd, current, doc, fsync=fsync):
        atomic_write(path, file_bytes(doc, current.seq + 1 if current else 1), fsync=fsync)


def read_fd(fd: int) -> bytes:
    """The whole content of the open file ``fd``."""
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 65536), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
