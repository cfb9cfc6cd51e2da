"""One SDK step's error seam: every vendor failure (an HTTP status, a transport error, an error object in a
200 answer, an unreadable response) becomes a ``RunFailure`` with the shared failure classes, the API key
scrubbed from its message, and a malformed response kept in quarantine next to the step's output."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2

from mcp_orchestrator.contracts import FailureClass
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes._sdk_wire import WireCapture, transport_cause
from mcp_orchestrator.runtimes.base import StepContext
from mcp_orchestrator.runtimes.cli.failures import class_for_status, quarantine

__all__ = ["Seam", "want"]

_MESSAGE_CAP = 400
_TAGS = re.compile(r"<[^>]*>")
_ERROR_CODES: list[tuple[FailureClass, re.Pattern[str]]] = [
    ("auth", re.compile(r"auth|api.?key|permission|forbidden|unauthori", re.I)),
    ("rate_limited", re.compile(r"rate.?limit|resource.?exhausted|quota|too.?many", re.I)),
    ("unavailable", re.compile(r"server.?error|internal|unavailable|overloaded|timeout|deadline", re.I)),
]


def want(obj: object, name: str, kind: type[Any]) -> Any:
    """``obj.name`` (or ``obj[name]``) when it is a ``kind``, else ``None``: for reading lax vendor objects."""
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None


@dataclass
class Seam:
    """One step's error seam: every vendor failure becomes a ``RunFailure`` here."""

    runtime: str
    name: str
    endpoint: str
    secret: str
    capture: WireCapture
    ctx: StepContext
    model: str

    def scrub(self, text: str) -> str:
        """``text`` without the API key, cut to a readable length."""
        if self.secret:
            text = text.replace(self.secret, "<redacted>")
        text = " ".join(text.split())
        return text if len(text) <= _MESSAGE_CAP else text[: _MESSAGE_CAP - 1] + "…"

    def fail(self, failure_class: FailureClass, message: str) -> RunFailure:
        """A failure with this API's name in front and the key scrubbed out."""
        return RunFailure(failure_class, self.scrub(f"{self.name}: {message}"))

    def bad_output(self, reason: str) -> RunFailure:
        """``bad_output``, with the captured response kept in quarantine next to the step's output."""
        cap = self.capture
        raw = bytes(cap.body)
        if self.secret:
            raw = raw.replace(self.secret.encode(), b"<redacted>")
        meta: dict[str, object] = {
            "runtime": self.runtime,
            "endpoint": self.endpoint,
            "model": self.model,
            "httpStatus": cap.status,
            "contentType": self.scrub(cap.content_type),
            "responseBytes": cap.total_bytes,
            "captureTruncated": cap.total_bytes > len(cap.body),
            "bodyComplete": cap.complete,
        }
        message = self.scrub(f"{self.name}: malformed response: {reason}")
        where = quarantine(self.ctx.output.spool_path, raw, message, meta=meta)
        return RunFailure("bad_output", f"{message}; raw response kept in {where}" if where else message)

    def check_envelope(self) -> None:
        """Raise ``bad_output`` unless the response is a 200 server-sent event stream of UTF-8 text (so far)."""
        cap = self.capture
        if cap.status is not None and cap.status != 200:
            raise self.bad_output(f"unexpected HTTP status {cap.status} for a streamed answer")
        if not cap.is_sse:
            shown = cap.content_type.split(";", 1)[0].strip() or "no content type"
            raise self.bad_output(f"expected an event stream (text/event-stream), got {shown!r}")
        whole = cap.complete and cap.total_bytes <= len(cap.body)
        try:
            codecs.getincrementaldecoder("utf-8")().decode(bytes(cap.body), final=whole)
        except UnicodeDecodeError as e:
            raise self.bad_output(f"the response is not valid UTF-8 (byte {e.start}: {e.reason})") from None

    def http_status(self, status: int, message: str) -> RunFailure:
        """The failure an HTTP error status means."""
        message = " ".join(_TAGS.sub(" ", message).split()) or "no message"
        if status < 400:
            return self.bad_output(f"unexpected HTTP status {status}: {message}")
        failure_class = class_for_status(status)
        hint = ""
        if failure_class == "auth":
            hint = " (check the API key)"
        return self.fail(failure_class, f"HTTP {status} from {self.endpoint}{hint}: {message}")

    def transport(self, exc: BaseException) -> RunFailure:
        """The failure a transport error means: before the answer started, the API is unavailable."""
        cause = transport_cause(exc)
        detail = f"{type(cause).__name__}: {cause}".rstrip(": ")
        if isinstance(cause, httpx2.DecodingError):
            return self.bad_output(f"the body could not be decoded ({detail})")
        if isinstance(cause, httpx2.ReadTimeout):
            return self.fail("stalled", f"nothing from {self.endpoint} within the read timeout ({detail})")
        if self.capture.status is not None:
            if self.capture.status >= 400:
                return self.http_status(self.capture.status, detail)
            return self.bad_output(f"the response was cut off after {self.capture.total_bytes} bytes ({detail})")
        if isinstance(cause, httpx2.TimeoutException):
            return self.fail("unavailable", f"timed out connecting to {self.endpoint} ({detail})")
        return self.fail("unavailable", f"cannot reach {self.endpoint} ({detail})")

    def error_object(self, error: object, *, documented: bool) -> RunFailure:
        """The failure an error object in a 200 answer means.

        A recognised status or code (rate limit, server error, auth) keeps its class; otherwise a documented
        failure event is a ``process_error`` and anything else is ``bad_output``.
        """
        code = want(error, "code", int) or want(error, "status", int)
        words = " ".join(str(want(error, key, str) or "") for key in ("code", "type", "status")).strip()
        message = want(error, "message", str) or "no message"
        failure_class: FailureClass | None = None
        if code is not None and code >= 400:
            failure_class = class_for_status(code)
        if failure_class in (None, "process_error"):
            failure_class = next((cls for cls, pat in _ERROR_CODES if pat.search(words)), failure_class)
        label = f"{words or code or 'error'}: {message}"
        if failure_class is None and not documented:
            return self.bad_output(f"an error object instead of an answer ({label})")
        return self.fail(failure_class or "process_error", f"the API reported an error ({label})")

    def unreadable(self, exc: Exception, what: str) -> RunFailure:
        """A parse error in the SDK: ``bad_output`` once a response arrived, a request problem before."""
        if self.capture.status is None:
            return self.fail("process_error", f"the request could not be sent ({type(exc).__name__}: {exc})")
        self.check_envelope()
        return self.bad_output(f"{what} ({type(exc).__name__}: {exc})")
