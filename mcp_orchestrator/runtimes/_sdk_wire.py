"""The SDK runtimes' HTTP wire: one shared TLS context, a bounded capture of each response as it came off
the wire (``WireCapture``, teed from the body stream by the step client's event hooks), and the helpers that
read a URL or a transport error safely. Imports ``httpx2``: only the SDK runtimes load it."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2

__all__ = ["WireCapture", "drain", "public_endpoint", "tls_context", "transport_cause", "url_problem"]

_CAPTURE_CAP = 1 << 20


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


async def drain(response: httpx2.Response, capture: WireCapture, seconds: float = 5.0) -> None:
    """Read what is left of a rejected response into the capture, bounded in size and time."""
    with anyio.move_on_after(seconds):
        try:
            async for _ in response.aiter_raw():
                if capture.total_bytes >= capture.cap:
                    break
        except httpx2.HTTPError:
            pass


def transport_cause(exc: BaseException) -> BaseException:
    """The innermost ``httpx2`` error behind ``exc`` (the SDKs wrap them), or ``exc`` itself."""
    seen: BaseException | None = exc
    found = exc
    while seen is not None:
        if isinstance(seen, httpx2.HTTPError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found


def url_problem(url: str) -> str | None:
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
