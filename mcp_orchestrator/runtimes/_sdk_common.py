"""What the two SDK runtimes (``openai_sdk``, ``google_sdk``) share: the wire capture, the error seam, the flow.

Only the SDK runtime modules import this one, so neither ``httpx2`` nor a vendor SDK is loaded until one of
them runs. Each step builds its own ``httpx2.AsyncClient`` and hands it to the SDK; the client's event hooks

* set our timeouts on every request (a connect timeout; no read timeout, since the engine's stall watchdog
  owns silence), whatever timeout the SDK asks for, and
* tee the response body into a bounded :class:`WireCapture`, so an answer we cannot understand is
  quarantined exactly as it came off the wire.

:class:`Seam` turns HTTP statuses, transport errors and error objects into ``RunFailure`` with the shared
failure classes; the API key is scrubbed from every message and from every quarantined byte.
:class:`SdkRuntime` is the common ``run_step``: credentials, the client's lifetime, progress reports.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
import ssl
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2

from mcp_orchestrator.contracts import FailureClass, Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepContext, StepOutcome, WorkerRuntime
from mcp_orchestrator.runtimes.cli.failures import class_for_status, quarantine

__all__ = ["SdkRuntime", "Seam", "TextSink", "WireCapture", "drain", "public_endpoint", "tls_context", "want"]

_CAPTURE_CAP = 1 << 20
_MESSAGE_CAP = 400
_CLOSE_GRACE = 5.0
_TAGS = re.compile(r"<[^>]*>")
_ERROR_CODES: list[tuple[FailureClass, re.Pattern[str]]] = [
    ("auth", re.compile(r"auth|api.?key|permission|forbidden|unauthori", re.I)),
    ("rate_limited", re.compile(r"rate.?limit|resource.?exhausted|quota|too.?many", re.I)),
    ("unavailable", re.compile(r"server.?error|internal|unavailable|overloaded|timeout|deadline", re.I)),
]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every step's HTTP client shares: httpx2's default (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    honoured), built once. Building it loads the CA store: about 25 ms of CPU, which a fresh client per step
    would otherwise spend on the event loop every time."""
    return httpx2.create_ssl_context()


def public_endpoint(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show and to record."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def want(obj: object, name: str, kind: type[Any]) -> Any:
    """``obj.name`` (or ``obj[name]``) when it is a ``kind``, else ``None``: for reading lax vendor objects."""
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None


class _TeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, capture: WireCapture) -> None:
        self._inner = inner
        self._capture = capture

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._capture.feed(chunk)
            yield chunk
        self._capture.complete = True

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class WireCapture:
    """The head of the last model response as it came off the wire, with its status and content type."""

    connect_timeout: float | None = 10.0
    read_timeout: float | None = None
    cap: int = _CAPTURE_CAP
    status: int | None = None
    content_type: str = ""
    body: bytearray = field(default_factory=bytearray)
    total_bytes: int = 0
    complete: bool = False

    def client(self) -> httpx2.AsyncClient:
        """A fresh HTTP client whose requests use our timeouts and whose responses are captured."""
        return httpx2.AsyncClient(
            verify=tls_context(),
            timeout=self._timeout(),
            follow_redirects=False,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )

    def _timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)

    async def _on_request(self, request: httpx2.Request) -> None:
        # The SDKs pass their own per-request timeouts (google-genai: none at all); ours win.
        request.extensions["timeout"] = self._timeout().as_dict()
        self.status, self.content_type, self.total_bytes, self.complete = None, "", 0, False
        self.body.clear()

    async def _on_response(self, response: httpx2.Response) -> None:
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "")
        if isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _TeeStream(response.stream, self)

    def feed(self, chunk: bytes) -> None:
        """Count a body chunk and keep it while the capture has room."""
        self.total_bytes += len(chunk)
        room = self.cap - len(self.body)
        if room > 0:
            self.body += chunk[:room]

    @property
    def is_sse(self) -> bool:
        """Whether the response said it is a server-sent event stream."""
        return self.content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


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
        cause = _transport_cause(exc)
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


async def drain(response: httpx2.Response, capture: WireCapture, seconds: float = 5.0) -> None:
    """Read what is left of a rejected response into the capture, bounded in size and time."""
    with anyio.move_on_after(seconds):
        try:
            async for _ in response.aiter_raw():
                if capture.total_bytes >= capture.cap:
                    break
        except httpx2.HTTPError:
            pass


def _transport_cause(exc: BaseException) -> BaseException:
    """The innermost ``httpx2`` error behind ``exc`` (the SDKs wrap them), or ``exc`` itself."""
    seen: BaseException | None = exc
    found = exc
    while seen is not None:
        if isinstance(seen, httpx2.HTTPError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found


class TextSink:
    """Writes answer text to the step output as it streams, and keeps it.

    Every event counts as activity for the stall watchdog (``alive``), text or not: a model that
    streams reasoning or bookkeeping events before its first word is working, not stalled.
    """

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self._parts: list[str] = []
        self.pieces = 0

    @property
    def text(self) -> str:
        """Everything written so far."""
        return "".join(self._parts)

    def alive(self) -> None:
        """Note that the model sent something."""
        self._ctx.output.last_activity = time.monotonic()

    def write(self, piece: str) -> None:
        """Stream one piece of text."""
        if piece:
            self._parts.append(piece)
            self.pieces += 1
            self._ctx.output.write(piece.encode("utf-8", "replace"))

    def settle(self, final: str) -> str:
        """Reconcile with the final text: write what the stream did not send; return the answer."""
        streamed = self.text
        if final and final != streamed and final.startswith(streamed):
            self.write(final[len(streamed) :])
        return final or streamed


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a base URL, or ``None``."""
    try:
        parts = urlsplit(url)
        _ = parts.port
        httpx2.URL(url)
    except (ValueError, httpx2.InvalidURL):
        return "it cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it has no host"
    return None


def _credential(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    """The first variable of ``names`` that holds a key, and the key (both empty when none does)."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return "", ""


class SdkRuntime(WorkerRuntime):
    """The common step flow of the SDK runtimes; a subclass implements :meth:`_answer`.

    ``environ`` replaces ``os.environ`` (read at each step) for the key and base URL;
    ``connect_timeout`` bounds connecting (a refused or silent endpoint is ``unavailable``);
    ``read_timeout`` (default none: the engine's stall watchdog owns silence) bounds each read.
    """

    name: ClassVar[str]
    key_vars: ClassVar[tuple[str, ...]]
    base_url_var: ClassVar[str]
    default_base_url: ClassVar[str]
    default_model: ClassVar[str]

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float | None = None,
    ) -> None:
        self._environ = environ
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        tls_context()  # built here, off the event loop when the orchestrator loads the runtime

    async def run_step(self, ctx: StepContext) -> StepOutcome:
        """Stream one answer; raise ``RunFailure`` with a shared class when it fails."""
        environ = os.environ if self._environ is None else self._environ
        source, key = _credential(environ, self.key_vars)
        if not key:
            names = " or ".join(self.key_vars)
            raise RunFailure("auth", f"{self.name}: no API key: set {names} in the server's environment")
        if not all(33 <= ord(c) <= 126 and c not in "\\'\"" for c in key):
            # A key an HTTP header cannot carry would fail deep in the HTTP client, echoed in its error.
            raise RunFailure("auth", f"{self.name}: the API key in {source} is not printable ASCII; set a valid key")
        base_url = environ.get(self.base_url_var, "").strip() or self.default_base_url
        problem = _url_problem(base_url)
        if problem is not None:
            shown = public_endpoint(base_url)
            raise RunFailure(
                "unavailable", f"{self.name}: {self.base_url_var} {shown!r} is not a usable URL: {problem}"
            )
        model = ctx.worker.model_name or self.default_model
        capture = WireCapture(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)
        seam = Seam(self.mode, self.name, public_endpoint(base_url), key, capture, ctx, model)
        await ctx.report(f"{self.name}: started (model {model} at {seam.endpoint})")
        http = capture.client()
        try:
            text, usage, session_id, extra = await self._answer(ctx, seam, http, key, base_url)
        except RunFailure as failure:
            await ctx.report(f"{self.name}: failed ({failure.failure_class})")
            raise
        finally:
            with anyio.move_on_after(_CLOSE_GRACE, shield=True):
                await http.aclose()
        await ctx.report(f"{self.name}: done ({usage.total_tokens if usage else 0} tokens)")
        details = {"model": model, "endpoint": seam.endpoint, "response_bytes": capture.total_bytes, **extra}
        return StepOutcome(text=text, usage=usage, session_id=session_id, details=details)

    @abstractmethod
    async def _answer(
        self, ctx: StepContext, seam: Seam, http: httpx2.AsyncClient, key: str, base_url: str
    ) -> tuple[str, Usage | None, str | None, dict[str, Any]]:
        """Stream the answer through the SDK: text, usage, session id and extra details (incl. finish_reason)."""
