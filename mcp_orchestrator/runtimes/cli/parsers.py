"""Streaming parsers of each CLI's JSONL: answer, usage, session id, tool activity, errors.

A parser takes one stdout line at a time (``feed``) and returns short progress excerpts
("codex: ran `pytest -q`"). Lines that are not JSON objects are counted and sampled, never
fatal by themselves; the failure taxonomy decides what a run without a result event means.
Everything kept is bounded.
"""

from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from mcp_orchestrator.contracts import Usage

__all__ = ["ClaudeParser", "CodexParser", "GeminiParser", "ParseState", "StreamParser", "make_parser"]

_MAX_TEXT = 1 << 20
_MAX_ITEMS = 50
_MAX_SAMPLE = 64 << 10
_EXCERPT = 160


def _short(text: str, cap: int = _EXCERPT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


def _unwrap_shell(cmd: str) -> str:
    """``/bin/bash -lc 'pytest -q'`` -> ``pytest -q`` (codex reports the wrapper)."""
    try:
        argv = shlex.split(cmd)
    except ValueError:
        return cmd
    if len(argv) == 3 and argv[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and argv[1] in ("-c", "-lc"):
        return argv[2]
    return cmd


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class ParseState:
    """What the output said so far."""

    session_id: str | None = None
    text: str = ""
    usage: Usage | None = None
    completed: bool = False
    failed: bool = False
    errors: list[str] = field(default_factory=list)
    api_status: int | None = None
    error_kind: str | None = None
    commands: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    tool_calls: int = 0
    permission_denials: int = 0
    events: int = 0
    unparsed_lines: int = 0
    unparsed_sample: bytearray = field(default_factory=bytearray)

    def error(self, message: str) -> None:
        """Remember an error message (bounded)."""
        if message and len(self.errors) < _MAX_ITEMS:
            self.errors.append(_short(message, 2000))

    def command(self, cmd: str) -> None:
        """Remember a command the CLI ran (bounded)."""
        if len(self.commands) < _MAX_ITEMS:
            self.commands.append(_short(cmd, 500))

    def file(self, path: str) -> None:
        """Remember a file the CLI changed (bounded, no duplicates)."""
        if path and path not in self.files_changed and len(self.files_changed) < _MAX_ITEMS:
            self.files_changed.append(path)

    def set_text(self, text: str) -> None:
        """Set the answer, bounded."""
        self.text = text[:_MAX_TEXT]

    def add_text(self, text: str) -> None:
        """Append to the answer, bounded."""
        if len(self.text) < _MAX_TEXT:
            self.text = (self.text + text)[:_MAX_TEXT]


class StreamParser(ABC):
    """Base: JSON decoding and bookkeeping; subclasses read their CLI's events."""

    name = "cli"

    def __init__(self) -> None:
        self.state = ParseState()

    def feed(self, line: bytes) -> list[str]:
        """Take one stdout line; return progress excerpts it produced."""
        stripped = line.strip()
        if not stripped:
            return []
        try:
            event = json.loads(stripped)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._unparsed(line)
            return []
        self.state.events += 1
        return [f"{self.name}: {p}" for p in self.event(event)]

    def _unparsed(self, line: bytes) -> None:
        st = self.state
        st.unparsed_lines += 1
        room = _MAX_SAMPLE - len(st.unparsed_sample)
        if room > 0:
            st.unparsed_sample += line[:room] + b"\n"

    @abstractmethod
    def event(self, event: dict[str, Any]) -> list[str]:
        """Handle one decoded event; return short progress excerpts."""


class CodexParser(StreamParser):
    """``codex exec --json``: thread.started, item.*, turn.completed / error + turn.failed."""

    name = "codex"

    def event(self, event: dict[str, Any]) -> list[str]:
        """Handle one codex event."""
        st = self.state
        kind = event.get("type")
        if kind == "thread.started":
            st.session_id = str(event.get("thread_id") or "") or st.session_id
        elif kind in ("item.started", "item.completed"):
            return self._item(kind, event.get("item") or {})
        elif kind == "turn.completed":
            u = event.get("usage") or {}
            inp, out = _int(u.get("input_tokens")), _int(u.get("output_tokens"))
            st.usage = Usage(input_tokens=inp, output_tokens=out, total_tokens=inp + out)
            st.completed = True
        elif kind == "error":
            st.error(str(event.get("message") or ""))
        elif kind == "turn.failed":
            st.failed = True
            err = event.get("error") or {}
            message = str(err.get("message") or "") if isinstance(err, dict) else str(err)
            if message and message not in st.errors:
                st.error(message)
        return []

    def _item(self, kind: str, item: dict[str, Any]) -> list[str]:
        st = self.state
        itype = item.get("type")
        if itype == "agent_message" and kind == "item.completed":
            st.set_text(str(item.get("text") or ""))
        elif itype == "command_execution":
            cmd = _unwrap_shell(str(item.get("command") or ""))
            if kind == "item.started":
                st.tool_calls += 1
                return [f"ran `{_short(cmd)}`"]
            st.command(f"{cmd} -> exit {item.get('exit_code')}")
        elif itype == "file_change" and kind == "item.completed":
            paths = [str(c.get("path")) for c in item.get("changes") or [] if isinstance(c, dict)]
            for path in paths:
                st.file(path)
            return [f"changed {_short(', '.join(paths))}"] if paths else []
        elif itype == "error" and kind == "item.completed":
            st.error(str(item.get("message") or ""))
        elif kind == "item.started" and itype in ("mcp_tool_call", "web_search"):
            st.tool_calls += 1
            return [f"{itype} {_short(str(item.get('tool') or item.get('query') or ''))}"]
        return []


def _tool_excerpt(name: str, args: dict[str, Any], st: ParseState) -> str:
    """Record a tool call and describe it."""
    st.tool_calls += 1
    cmd = args.get("command")
    path = args.get("file_path") or args.get("path")
    if isinstance(cmd, str) and cmd:
        st.command(cmd)
        return f"ran `{_short(cmd)}`"
    if name in ("write_file", "replace", "Write", "Edit", "MultiEdit", "NotebookEdit") and isinstance(path, str):
        st.file(path)
        return f"wrote {_short(path)}"
    return f"tool {name}"


class GeminiParser(StreamParser):
    """``gemini -o stream-json``: init, message (assistant deltas), tool_use, tool_result, error, result."""

    name = "gemini"

    def event(self, event: dict[str, Any]) -> list[str]:
        """Handle one gemini event."""
        st = self.state
        kind = event.get("type")
        if kind == "init":
            st.session_id = str(event.get("session_id") or "") or st.session_id
        elif kind == "message" and event.get("role") == "assistant":
            content = str(event.get("content") or "")
            if event.get("delta"):
                st.add_text(content)
            else:
                st.set_text(content)
        elif kind == "tool_use":
            params = event.get("parameters")
            return [_tool_excerpt(str(event.get("tool_name") or "?"), params if isinstance(params, dict) else {}, st)]
        elif kind == "error":
            st.error(str(event.get("message") or ""))
        elif kind == "result":
            stats = event.get("stats") or {}
            inp, out = _int(stats.get("input_tokens")), _int(stats.get("output_tokens"))
            total = _int(stats.get("total_tokens")) or inp + out
            st.usage = Usage(input_tokens=inp, output_tokens=out, total_tokens=total)
            if event.get("status") == "success":
                st.completed = True
            else:
                st.failed = True
                err = event.get("error") or {}
                st.error(str(err.get("message") or err) if isinstance(err, dict) else str(err))
                st.error_kind = str(err.get("type")) if isinstance(err, dict) and err.get("type") else None
        return []


class ClaudeParser(StreamParser):
    """``claude -p --output-format stream-json --verbose``: system/init, assistant, user, result."""

    name = "claude"

    def event(self, event: dict[str, Any]) -> list[str]:
        """Handle one claude event."""
        st = self.state
        kind = event.get("type")
        if event.get("session_id"):
            st.session_id = str(event["session_id"])
        if kind == "assistant":
            if event.get("error"):
                st.error_kind = str(event["error"])
            progress = []
            message = event.get("message") or {}
            for block in message.get("content") or []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    args = block.get("input")
                    name = str(block.get("name") or "?")
                    progress.append(_tool_excerpt(name, args if isinstance(args, dict) else {}, st))
                elif block.get("type") == "text" and block.get("text"):
                    st.set_text(str(block["text"]))
            return progress
        if kind == "result":
            u = event.get("usage") or {}
            keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            inp = sum(_int(u.get(k)) for k in keys)
            out = _int(u.get("output_tokens"))
            st.usage = Usage(input_tokens=inp, output_tokens=out, total_tokens=inp + out)
            st.permission_denials = len(event.get("permission_denials") or [])
            if isinstance(event.get("result"), str):
                st.set_text(event["result"])
            status = event.get("api_error_status")
            st.api_status = status if isinstance(status, int) else None
            if event.get("is_error") or event.get("subtype") not in (None, "success"):
                st.failed = True
                st.error(str(event.get("result") or event.get("subtype") or "error"))
            else:
                st.completed = True
        return []


def make_parser(model: str) -> StreamParser:
    """The parser for ``model``'s CLI output."""
    parsers: dict[str, type[StreamParser]] = {
        "codex_cli": CodexParser,
        "gemini_cli": GeminiParser,
        "claude_cli": ClaudeParser,
    }
    return parsers[model]()
