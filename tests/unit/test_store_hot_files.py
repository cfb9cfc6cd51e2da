"""The hot path's file savings (issue 15): markers as hard links to one empty file, and a step's output
redacted without a temporary copy when it holds no secret. Each keeps what a reader sees."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.store import JsonRunStore


def test_markers_are_links_to_one_file_and_list_like_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JsonRunStore(tmp_path, fsync=False)
    store._mark(tmp_path / "active", "run_a")
    store._mark(tmp_path / "active", "run_a")  # again: already there, not an error
    store._mark(tmp_path / "index" / "agent" / "x", "run_a")
    (source,) = (tmp_path / "markers").iterdir()
    assert (tmp_path / "active" / "run_a").stat().st_ino == source.stat().st_ino
    assert source.stat().st_nlink == 3

    real_link = os.link
    calls = {"n": 0}

    def full(src: str, dst: object) -> None:  # the file system's link limit, once
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EMLINK, "Too many links")
        real_link(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", full)
    store._mark(tmp_path / "active", "run_b")
    assert (tmp_path / "active" / "run_b").exists()
    assert len(list((tmp_path / "markers").iterdir())) == 2, "a full source is replaced by a new one"

    def refused(src: str, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    store._mark(tmp_path / "active", "run_c")  # no hard links here: a plain empty file
    assert sorted(p.name for p in (tmp_path / "active").iterdir()) == ["run_a", "run_b", "run_c"]


def test_redacting_a_clean_file_leaves_it_in_place_and_a_dirty_one_is_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened_for_writing: list[str] = []
    real_open = Path.open

    def recording_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            opened_for_writing.append(self.name)
        return real_open(self, mode, *args, **kwargs)

    redactor = Redactor({"OPENAI_API_KEY": "sk-test-abcdefgh12345"})
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_text("nothing secret here\n" * 1000)
    dirty.write_text("a\n" * 50 + "key sk-test-abcdefgh12345 end\n" + "b\n" * 50)
    inode = clean.stat().st_ino
    monkeypatch.setattr(Path, "open", recording_open)
    assert redactor.file(clean, chunk=256, overlap=64) is False
    assert opened_for_writing == [], "a file without secrets is only read"
    assert clean.stat().st_ino == inode and clean.read_text() == "nothing secret here\n" * 1000
    assert redactor.file(dirty, chunk=64, overlap=40) is True
    assert [n.split(".redact-")[0] for n in opened_for_writing] == ["dirty.log"]
    text = dirty.read_text()
    assert "sk-test" not in text and "key <redacted> end" in text and text.count("\n") == 101
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.log", "dirty.log"]
