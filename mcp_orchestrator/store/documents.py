"""Documents on disk: what the JSON store reads and writes, and what it does with a bad one.

Each document is one JSON file carrying ``schemaVersion``, changed in place in one of its two checksummed
slots (``store.slots``: format 3, no new file per change) or, when new or outgrown, written whole
(``store._files.atomic_write``: temp file, fsync, rename). An older one (format 1 or 2: the document itself,
rewritten through a temporary file) is read as it is and written back in the current format; a newer one is
refused by name (``NewerDocument``) and left where it is. A document that does not
parse is moved to ``quarantine/`` with a reason file, never deleted; so is a temporary file whose writer
died before renaming it. Markers (empty names, hard links to one empty file) are made here too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mcp_orchestrator.contracts import STORE_SCHEMA_VERSION, utcnow
from mcp_orchestrator.errors import CorruptDocument, NewerDocument
from mcp_orchestrator.store import slots
from mcp_orchestrator.store._files import atomic_write

__all__ = ["MIGRATIONS", "DocumentFiles"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


# Per old version: how to turn its JSON into what the current models read (None: it already reads as is).
# Version 1 differs only in layout (indented), so it needs nothing.
MIGRATIONS: dict[int, Callable[[dict[str, object]], dict[str, object]]] = {}


def _version_of(data: bytes) -> int | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    version = doc.get("schemaVersion") if isinstance(doc, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _migrate(data: bytes, version: int | None, model: type[M]) -> M | None:
    """An older document brought up to the current models, or None when no migration applies."""
    if version is None or version >= STORE_SCHEMA_VERSION or not any(v >= version for v in MIGRATIONS):
        return None
    doc = json.loads(data)
    for step in sorted(v for v in MIGRATIONS if v >= version):
        doc = MIGRATIONS[step](doc)
    try:
        return model.model_validate(doc)
    except ValidationError:
        return None


class DocumentFiles:
    """Reads, writes, markers and quarantine under ``home`` (the base of the JSON store)."""

    def __init__(self, home: Path, *, fsync: bool = True) -> None:
        self.home = home
        self.fsync = fsync
        self._folders: set[Path] = set()  # marker folders this store has made or seen
        self._marker_source: str | None = None  # the empty file this store's markers link to
        self._links = True  # False where the file system refuses hard links: markers are plain empty files

    def _read(self, path: Path, model: type[M]) -> M | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return self._parse(path, data, model)

    def _parse(self, path: Path, data: bytes, model: type[M]) -> M:
        """The document in the file content ``data`` (of ``path``), in any format this release reads."""
        try:
            found = slots.parse(data)
        except slots.TornDocument as e:
            raise CorruptDocument(path, f"does not parse as {model.__name__}: format {slots.FORMAT}, {e}") from e
        if found is not None:
            data = found.doc
        try:
            doc = model.model_validate_json(data)
        except ValidationError as e:
            version = _version_of(data)
            if version is not None and version > STORE_SCHEMA_VERSION:
                raise NewerDocument(path, version, STORE_SCHEMA_VERSION) from e
            migrated = _migrate(data, version, model)
            if migrated is None:
                raise CorruptDocument(path, f"does not parse as {model.__name__}: {e.errors()[0]['msg']}") from e
            doc = migrated
        version = getattr(doc, "schema_version", STORE_SCHEMA_VERSION)
        if version > STORE_SCHEMA_VERSION:
            raise NewerDocument(path, version, STORE_SCHEMA_VERSION)
        return doc

    def _write(self, path: Path, doc: BaseModel, *, fd: int | None = None, data: bytes = b"") -> None:
        """Store ``doc`` at ``path`` (under its lock); ``fd``: the document already open, with its content ``data``."""
        if getattr(doc, "schema_version", STORE_SCHEMA_VERSION) != STORE_SCHEMA_VERSION:
            doc = doc.model_copy(update={"schema_version": STORE_SCHEMA_VERSION})  # migrated on write
        payload = doc.model_dump_json().encode()
        if fd is None:
            slots.put(path, payload, fsync=self.fsync)
        else:
            slots.put_open(path, fd, data, payload, fsync=self.fsync)

    def quarantine(self, path: Path, reason: str) -> Path | None:
        """Move a corrupt or half-written document aside, with its reason; never delete it."""
        rel = path.relative_to(self.home).as_posix().replace("/", "__")
        dest = self.home / "quarantine" / f"{utcnow().strftime('%Y%m%dT%H%M%S.%f')}-{rel}"
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            return None
        atomic_write(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode(), fsync=self.fsync)
        log.warning("quarantined %s -> %s: %s", path, dest, reason)
        return dest

    def quarantined(self) -> list[tuple[str, str]]:
        """Every quarantined document and its reason."""
        out = []
        for p in sorted((self.home / "quarantine").iterdir()):
            if p.name.endswith(".reason.txt"):
                continue
            reason_file = p.with_name(p.name + ".reason.txt")
            reason = reason_file.read_text().strip() if reason_file.exists() else "unknown"
            out.append((p.name, reason))
        return out

    def _load_or_quarantine(self, path: Path, model: type[M]) -> M | None:
        try:
            return self._read(path, model)
        except CorruptDocument as e:
            self.quarantine(path, e.reason)
            return None

    def _mark(self, folder: Path, name: str) -> None:
        """Make the empty marker ``folder/name``; folders known to exist are not made again.

        A marker is a hard link to one empty file of this store (``markers/<token>``): a new directory entry
        costs microseconds where a new inode cost 0.1-0.2 ms on ext4 (bench/scheduler.py ``disk``). Readers only
        look at names, so a marker made either way reads the same."""
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            if len(self._folders) > 10_000:
                self._folders.clear()
            self._folders.add(folder)
        for _ in range(3):
            try:
                self._link_marker(folder / name)
                return
            except FileExistsError:
                return
            except FileNotFoundError:  # the folder was removed meanwhile (retention, a buried instance)
                folder.mkdir(parents=True, exist_ok=True)
                self._marker_source = None  # or the source was: the next try makes another one
        self._link_marker(folder / name)

    def _link_marker(self, path: Path) -> None:
        if not self._links:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
            return
        try:
            os.link(self._marker_source or self._new_marker_source(), path)
        except OSError as e:
            if e.errno == errno.EMLINK:  # the source has all the links its file system allows: start another
                self._marker_source = None
                os.link(self._new_marker_source(), path)
            elif e.errno in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):  # no hard links here: plain files
                self._links = False
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
            else:
                raise

    def _new_marker_source(self) -> str:
        """A new empty file for markers to link to; the sources of processes that are gone are removed (their
        markers stay: a link outlives the name it was made from)."""
        folder = self.home / "markers"
        folder.mkdir(exist_ok=True)
        for old in os.listdir(folder):
            pid = old.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / old)
        source = str(folder / f"{os.getpid()}-{secrets.token_hex(6)}")
        os.close(os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
        self._marker_source = source
        return source

    def _sweep_tmp(self, folder: Path, moved: list[tuple[str, str]]) -> None:
        """Quarantine the abandoned temporary files in ``folder`` (appending to ``moved``)."""
        for tmp in folder.glob("*.json.tmp-*"):
            if not _abandoned(tmp):
                continue
            reason = "half-written: a writer stopped before renaming it into place"
            if self.quarantine(tmp, reason) is not None:
                moved.append((str(tmp), reason))


# What ``atomic_write`` names its temporary files: ``<name>.tmp-<pid>-<hex>``. Anchored at the end, so a
# document or lock whose own name merely contains ".json.tmp-" (a worker may be named so) never matches.
_TMP_NAME = re.compile(r"\.tmp-([0-9]+)-[0-9a-f]+\Z")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(tmp: Path) -> bool:
    """A temporary file whose writer is gone (or that is over an hour old): never a write in flight."""
    m = _TMP_NAME.search(tmp.name)
    if m is None:
        return False
    try:
        pid = int(m.group(1))
        age = time.time() - tmp.stat().st_mtime
    except (ValueError, FileNotFoundError):
        return False
    return age > 3600 or not _pid_alive(pid)
