"""The one exception tree of mcp-orchestrator.

    OrchestratorError
    ├── UsageError                  the caller's mistake: fix the request and retry
    │   ├── InvalidArgument         a malformed id, name, path or option
    │   ├── PathNotAllowed          a workdir outside the allowed roots
    │   ├── NotFound                no such worker or run
    │   ├── Conflict                the name is taken, the worker is stopped, ...
    │   ├── Forbidden               another agent owns the worker or run
    │   ├── PanicEngaged            the write guard is on
    │   ├── Overloaded              a priority class's queue is full: retry later
    │   ├── RateLimited             this credential dispatched too often: retry later
    │   ├── Unavailable             the run executor cannot be reached or started: retry later
    │   └── UnknownArgument         a tool argument that does not exist (did you mean ...?)
    ├── RunFailure                  a step failed while running (typed failure class)
    └── StoreError                  the data directory could not be read or written
        ├── CorruptDocument         a stored document failed to parse or validate
        └── NewerDocument           a document written by a newer release: left in place

Errors carry typed attributes; the MCP layer turns every ``UsageError`` into a
``ToolError`` whose text tells the caller what to do next.
"""

from __future__ import annotations

from pathlib import Path

from mcp_orchestrator.contracts import FailureClass

__all__ = [
    "Conflict",
    "CorruptDocument",
    "Forbidden",
    "InvalidArgument",
    "NewerDocument",
    "NotFound",
    "OrchestratorError",
    "Overloaded",
    "PanicEngaged",
    "PathNotAllowed",
    "RateLimited",
    "RunFailure",
    "StoreError",
    "Unavailable",
    "UnknownArgument",
    "UsageError",
]


def _sentence(text: str) -> str:
    """``text`` ending as a sentence does (a full stop unless it already ends with . ! ? or a closing quote)."""
    text = text.strip()
    return text if not text or text[-1] in ".!?`'\"" else text + "."


class OrchestratorError(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(OrchestratorError):
    """The caller asked for something invalid; ``hint`` says what to do instead."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return _sentence(self.message) + (" " + _sentence(self.hint) if self.hint.strip() else "")


class InvalidArgument(UsageError):
    """An argument is malformed."""

    def __init__(self, field: str, message: str, *, hint: str = "") -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field


class PathNotAllowed(InvalidArgument):
    """A working directory resolves outside every allowed root."""

    def __init__(self, field: str, message: str, *, roots: list[Path]) -> None:
        shown = ", ".join(str(r) for r in roots)
        super().__init__(
            field,
            message,
            hint=f"Use a directory inside an allowed root ({shown}) or add one to MCP_ORCHESTRATOR_ROOTS.",
        )
        self.roots = roots


class NotFound(UsageError):
    """No such worker or run."""

    def __init__(self, kind: str, key: str, *, hint: str = "") -> None:
        super().__init__(f"No {kind} named {key!r}.", hint=hint)
        self.kind = kind
        self.key = key


class Conflict(UsageError):
    """The request conflicts with the current state."""


class Forbidden(UsageError):
    """Another agent owns the object."""


class PanicEngaged(UsageError):
    """The panic write-guard refuses every mutating call."""

    def __init__(self, reason: str, engaged_by: str) -> None:
        super().__init__(
            f"Refused: the panic switch is engaged (by {engaged_by}: {reason}).",
            hint="Read tools still work. An operator releases it with `mcp-orchestrator panic off`.",
        )
        self.reason = reason
        self.engaged_by = engaged_by


class Overloaded(UsageError):
    """Backpressure: the queue of a priority class is full; nothing was accepted."""

    def __init__(self, priority: str, depth: int, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"overloaded: the {priority} queue is full ({depth} of {limit} runs waiting).",
            hint=f"Nothing was accepted. Retry after {retry_after_seconds} s, or dispatch with priority 'batch'.",
        )
        self.priority = priority
        self.depth = depth
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


class RateLimited(UsageError):
    """A principal's dispatch rate is used up; nothing was accepted."""

    def __init__(self, limit: str, retry_after_seconds: int) -> None:
        super().__init__(
            f"rate_limited: this credential may make {limit}.",
            hint=f"Nothing was accepted. Retry after {retry_after_seconds} s.",
        )
        self.retry_after_seconds = retry_after_seconds


class Unavailable(UsageError):
    """The per-data-dir executor could not be reached or started; nothing was accepted."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        default = "Nothing was accepted. Retry; `mcp-orchestrator daemon status` shows why."
        super().__init__(message, hint=hint or default)


class UnknownArgument(UsageError):
    """A tool call named an argument the tool does not have."""

    def __init__(self, tool: str, name: str, suggestion: str | None, valid: list[str]) -> None:
        if suggestion:
            hint = f"Did you mean {suggestion}?"
        else:
            hint = f"Valid arguments: {', '.join(valid)}." if valid else "This tool takes no arguments."
        super().__init__(f"unknown argument {name!r}.", hint=hint)
        self.tool = tool
        self.name = name
        self.suggestion = suggestion


class RunFailure(OrchestratorError):
    """A step failed; ``failure_class`` is one of the shared failure classes."""

    def __init__(self, failure_class: FailureClass, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(f"{failure_class}: {message}")
        self.failure_class: FailureClass = failure_class
        self.message = message
        self.exit_code = exit_code


class StoreError(OrchestratorError):
    """The data directory could not be read or written."""


class CorruptDocument(StoreError):
    """A stored document failed to parse or validate."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NewerDocument(StoreError):
    """A stored document of a newer schema than this release reads: it is left untouched, never quarantined."""

    def __init__(self, path: Path, version: int, supported: int) -> None:
        super().__init__(
            f"{path} was written by a newer mcp-orchestrator (document schema {version}; this release reads up to "
            f"{supported}). Upgrade this server: the document is left as it is."
        )
        self.path = path
        self.version = version
