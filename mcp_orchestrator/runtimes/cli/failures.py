"""One failure taxonomy for the CLI workers, from exit code and output together.

Each CLI fails differently: codex prints ``error`` then ``turn.failed`` and exits 1; gemini
ends with ``result{status: error}`` and exits with the HTTP status & 0xFF (401 -> 145,
429 -> 173, 500 -> 244), 41 for auth configuration; claude exits 1 with ``is_error`` and
``api_error_status`` in its result. ``classify`` reads all of that and returns the
``RunFailure`` to raise, or ``None`` for a good run. Cancellation is not decided here: the
runtime re-raises the cancellation it received, whatever the CLI's exit code (gemini exits 0
on SIGTERM).

A run whose output cannot be understood is ``bad_output``; ``quarantine`` keeps its raw bytes
next to the step's output file, with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mcp_orchestrator.contracts import FailureClass
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.cli.parsers import ParseState

__all__ = ["class_for_status", "classify", "quarantine"]

# gemini exits with (HTTP status & 0xFF) on API errors.
_GEMINI_EXIT_STATUS = {(s & 0xFF): s for s in (400, 401, 403, 404, 429, 500, 502, 503, 504)}
_GEMINI_AUTH_EXIT = 41
_STATUS_RE = re.compile(r"(?:status[:= ]*|API Error:?\s*|\"code\\?\":\s*|\()([45]\d\d)\b", re.IGNORECASE)
_CLAUDE_KINDS: dict[str, FailureClass] = {
    "authentication_failed": "auth",
    "billing_error": "auth",
    "rate_limit": "rate_limited",
    "server_error": "unavailable",
    "overloaded": "unavailable",
}
_PATTERNS: list[tuple[FailureClass, re.Pattern[str]]] = [
    (
        "auth",
        re.compile(
            r"unauthori[sz]ed|unauthenticated|invalid api key|authenticat(e|ion) (failed|error)|"
            r"failed to authenticate|not logged in|please (log|sign) in|permission_denied|"
            r"missing environment variable|api[ _-]?key\b.{0,40}\b(missing|not (set|found|provided)|required)",
            re.I,
        ),
    ),
    ("rate_limited", re.compile(r"rate.?limit|too many requests|resource_exhausted|quota", re.I)),
    (
        "unavailable",
        re.compile(
            r"connection (refused|failed|reset)|econnrefused|econnreset|error sending request|"
            r"fetch failed|high demand|overloaded|service unavailable|bad gateway|"
            r"internal server error|server.side issue|enotfound|getaddrinfo",
            re.I,
        ),
    ),
]


def class_for_status(status: int) -> FailureClass:
    """The failure class of an HTTP status from the model API."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status in (408, 529):
        return "unavailable"
    return "process_error"


def _status_in(messages: list[str]) -> int | None:
    for message in messages:
        if m := _STATUS_RE.search(message):
            return int(m.group(1))
    return None


def _tail_text(data: bytes, cap: int = 600) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text[-cap:]


def classify(model: str, exit_code: int, state: ParseState, stderr: bytes) -> RunFailure | None:
    """The failure a finished run ended in, or ``None`` when it succeeded."""
    if exit_code == 0 and state.completed and not state.failed:
        return None
    name = model.removesuffix("_cli")
    messages = list(state.errors)
    detail = "; ".join(messages)[-600:] or _tail_text(stderr) or "no error message"
    status = state.api_status or _status_in(messages)
    if status is None and model == "gemini_cli" and exit_code in _GEMINI_EXIT_STATUS:
        status = _GEMINI_EXIT_STATUS[exit_code]
    failure: FailureClass | None = None
    if status is not None and status >= 400:
        failure = class_for_status(status)
    elif state.error_kind in _CLAUDE_KINDS:
        failure = _CLAUDE_KINDS[state.error_kind]
    elif model == "gemini_cli" and exit_code == _GEMINI_AUTH_EXIT:
        failure = "auth"
    else:
        haystack = "\n".join(messages) + "\n" + _tail_text(stderr, 2000)
        failure = next((cls for cls, pattern in _PATTERNS if pattern.search(haystack)), None)
    if failure is not None:
        where = f" (HTTP {status})" if status else ""
        return RunFailure(failure, f"{name}: model API error{where}: {detail}", exit_code=exit_code)
    if exit_code == 0 and not state.failed:
        return RunFailure(
            "bad_output",
            f"{name} exited 0 without a result event ({state.events} events, {state.unparsed_lines} unparsed lines)",
            exit_code=exit_code,
        )
    if exit_code < 0:
        return RunFailure("process_error", f"{name} was killed by signal {-exit_code}: {detail}", exit_code=exit_code)
    return RunFailure("process_error", f"{name} exited {exit_code}: {detail}", exit_code=exit_code)


def quarantine(spool_path: Path | None, raw: bytes, reason: str, *, meta: dict[str, object]) -> Path | None:
    """Keep ``raw`` next to the step output as ``<output>.quarantine`` with ``<output>.quarantine.json``."""
    if spool_path is None:
        return None
    target = spool_path.with_name(spool_path.name + ".quarantine")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        info = {"reason": reason, "rawBytes": len(raw), **meta}
        target.with_name(target.name + ".json").write_text(json.dumps(info, indent=2, default=str))
    except OSError:
        return None
    return target
