"""A deterministic, scriptable loopback model server for the real CLIs and SDKs.

It stands in for three model APIs on ``127.0.0.1`` (random free port):

* OpenAI Responses: ``POST /v1/responses`` (SSE or JSON), plus ``/v1/chat/completions``;
* Gemini: ``POST /v1beta/models/{m}:streamGenerateContent?alt=sse`` and ``:generateContent``
  (and the ``/v1/models/...`` paths google-genai 3.x uses);
* Anthropic Messages: ``POST /v1/messages`` (SSE or JSON).

Tests script the answers with a queue of :class:`Turn` values, each optionally bound to one
API and to a marker string that must appear in the request body (so concurrent runs that put
distinct markers in their prompts never take each other's turns)::

    with ModelServer() as server:
        server.script(Turn.shell("ls"), Turn.answer("done"), match="case-17")
        ...
        server.requests  # what every client sent, secrets redacted

A turn answers with text, calls a tool (shell command or file write, translated to each API's
tool names), fails with an HTTP status, waits, or never answers (until the client hangs up).
A streamed answer can come in several pieces (``Turn.stream("a", "b", hold=event)`` pauses after
the first piece until the test sets ``event``), and ``Turn.raw(Envelope(...))`` replays a raw
HTTP response byte for byte - any status, content type, body and framing, including a body cut
off mid-stream - to test how clients survive malformed answers.
When no scripted turn matches, ``server.default`` answers. Usage is reported in each API's
format. Auxiliary requests (gemini's model router and next-speaker checks) are answered
without consuming turns.

Run standalone for benchmarks: ``python -m tests.support.model_server --port 8765``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from . import model_wire as wire

__all__ = ["Api", "Envelope", "Framing", "ModelServer", "RecordedRequest", "ToolCall", "Turn", "main"]

Api = Literal["openai", "gemini", "anthropic"]
Framing = Literal["length", "chunked", "close", "abort"]

_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "proxy-authorization"}
)


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asks for, translated to each CLI's own tool.

    ``shell`` runs ``command`` (codex ``exec_command``, gemini ``run_shell_command``, claude ``Bash``);
    ``write`` writes ``content`` to ``path`` (codex via a shell command, gemini ``write_file``, claude
    ``Write``); ``raw`` sends ``name`` and ``args`` unchanged.
    """

    kind: Literal["shell", "write", "raw"]
    command: str = ""
    path: str = ""
    content: str = ""
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """A raw HTTP response to replay as is.

    ``framing`` says how the body is delimited: ``length`` (a ``content-length`` header, which
    ``declared_length`` may overstate to cut the body short), ``chunked``, ``close`` (no length:
    the body ends when the connection closes) or ``abort`` (chunked, but the connection closes
    before the final chunk - a stream cut mid-way). ``chunk_size`` splits a chunked body into
    pieces of that many bytes. ``content_type`` ``None`` sends no content-type header.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    framing: Framing = "length"
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    declared_length: int | None = None
    chunk_size: int = 0


@dataclass(frozen=True)
class Turn:
    """One scripted model turn."""

    text: str = ""
    tool: ToolCall | None = None
    status: int = 200
    error_message: str = ""
    delay: float = 0.0
    hang: bool = False
    input_tokens: int = 100
    output_tokens: int = 7
    deltas: tuple[str, ...] = ()
    hold: threading.Event | None = field(default=None, compare=False)
    envelope: Envelope | None = None

    @classmethod
    def answer(cls, text: str, *, delay: float = 0.0, input_tokens: int = 100, output_tokens: int = 7) -> Turn:
        """A plain answer."""
        return cls(text=text, delay=delay, input_tokens=input_tokens, output_tokens=output_tokens)

    @classmethod
    def stream(
        cls,
        *deltas: str,
        hold: threading.Event | None = None,
        input_tokens: int = 100,
        output_tokens: int = 7,
    ) -> Turn:
        """An answer streamed in ``deltas``; with ``hold``, the rest waits after the first piece until it is set."""
        return cls(
            text="".join(deltas),
            deltas=deltas,
            hold=hold,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

    @classmethod
    def raw(cls, envelope: Envelope, *, delay: float = 0.0) -> Turn:
        """Replay ``envelope`` byte for byte, whatever the API."""
        return cls(envelope=envelope, delay=delay)

    @classmethod
    def error(cls, status: int, message: str = "", *, delay: float = 0.0) -> Turn:
        """An HTTP error with a body in the API's error format."""
        return cls(status=status, error_message=message or HTTPStatus(status).phrase, delay=delay)

    @classmethod
    def never(cls) -> Turn:
        """Accept the request and never answer, until the client disconnects or the server stops."""
        return cls(hang=True)

    @classmethod
    def shell(cls, command: str, *, text: str = "") -> Turn:
        """Ask the client to run a shell command."""
        return cls(text=text, tool=ToolCall("shell", command=command))

    @classmethod
    def write(cls, path: str, content: str, *, text: str = "") -> Turn:
        """Ask the client to write ``content`` to ``path`` (absolute paths work for every CLI)."""
        return cls(text=text, tool=ToolCall("write", path=path, content=content))

    @classmethod
    def raw_tool(cls, name: str, args: dict[str, Any]) -> Turn:
        """Ask for the tool ``name`` with ``args`` exactly as given."""
        return cls(tool=ToolCall("raw", name=name, args=args))


@dataclass
class RecordedRequest:
    """One request as the server saw it (secret headers and the ``key`` query parameter redacted)."""

    api: Api | None
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    text: str
    turn: Turn | None = None
    auxiliary: bool = False
    disconnected: bool = False
    finished: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class _Scripted:
    turn: Turn
    api: Api | None
    match: str | None


def _classify(path: str) -> tuple[Api | None, str]:
    """Which API a path belongs to, and the operation."""
    if path.startswith("/v1/responses"):
        return "openai", "responses"
    if path.startswith("/v1/chat/completions"):
        return "openai", "chat"
    if path.startswith("/v1/messages/count_tokens"):
        return "anthropic", "count_tokens"
    if path.startswith("/v1/messages"):
        return "anthropic", "messages"
    if path.startswith(("/v1beta/models/", "/v1/models/", "/v1alpha/models/")) and ":" in path:
        return "gemini", path.rsplit(":", 1)[1]
    return None, ""


class ModelServer:
    """The loopback model server; a context manager that serves from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, default: Turn | None = None) -> None:
        self.default = default or Turn.answer("ok")
        self.requests: list[RecordedRequest] = []
        self._queue: list[_Scripted] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.model = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the gemini and anthropic base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL, ending in ``/v1``."""
        return f"{self.url}/v1"

    def start(self) -> ModelServer:
        """Serve from a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests end at once."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------------------------------

    def script(self, *turns: Turn, api: Api | None = None, match: str | None = None) -> None:
        """Queue ``turns``; each serves the next request of ``api`` whose body contains ``match``."""
        with self._cond:
            self._queue.extend(_Scripted(t, api, match) for t in turns)

    def pending(self, match: str | None = None) -> int:
        """How many scripted turns (with this marker, or all) are still queued."""
        with self._cond:
            return sum(1 for s in self._queue if match is None or s.match == match)

    def clear(self) -> None:
        """Drop the queue and the request log."""
        with self._cond:
            self._queue.clear()
            self.requests.clear()

    def _take(self, api: Api, text: str) -> Turn:
        with self._cond:
            for i, s in enumerate(self._queue):
                if (s.api is None or s.api == api) and (s.match is None or s.match in text):
                    return self._queue.pop(i).turn
        return self.default

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def next_id(self, prefix: str) -> str:
        """A deterministic id: ``prefix`` and a counter."""
        return f"{prefix}_{next(self._ids):06d}"

    # -- inspection ------------------------------------------------------------------------------------------------

    def matching(
        self, match: str | None = None, api: Api | None = None, *, auxiliary: bool = False
    ) -> list[RecordedRequest]:
        """Recorded requests of ``api`` whose body contains ``match`` (auxiliary ones only if asked)."""
        with self._cond:
            return [
                r
                for r in self.requests
                if (api is None or r.api == api)
                and (match is None or match in r.text)
                and (auxiliary or not r.auxiliary)
            ]

    def wait_for(self, predicate: Callable[[ModelServer], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every request event) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def wait_for_request(
        self, match: str | None = None, *, hanging: bool = False, timeout: float = 30
    ) -> RecordedRequest:
        """The first request containing ``match`` (that hangs, if asked); raises ``TimeoutError``."""
        found: list[RecordedRequest] = []

        def ready(_: ModelServer) -> bool:
            for r in self.requests:
                if (match is None or match in r.text) and not r.auxiliary and (not hanging or (r.turn and r.turn.hang)):
                    found.append(r)
                    return True
            return False

        if not self.wait_for(ready, timeout):
            raise TimeoutError(f"no request matching {match!r} within {timeout} s")
        return found[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    model: ModelServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``ModelServer.requests``."""

    # -- plumbing --------------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            import gzip

            data = gzip.decompress(data)
        return data

    def _client_gone(self, wait: float) -> bool:
        """Wait up to ``wait`` seconds; True when the client closed its end."""
        try:
            readable, _, _ = select.select([self.connection], [], [], wait)
            if not readable:
                return False
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except (OSError, ValueError):
            return True

    def _pause(self, seconds: float, req: RecordedRequest) -> bool:
        """Sleep, watching the client; False if it hung up or the server stops."""
        model = self.server.model
        deadline = time.monotonic() + seconds
        while not model._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self._client_gone(min(left, 0.1)):
                req.disconnected = True
                return False
        return False

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _send_sse(self, events: Iterator[bytes], turn: Turn, req: RecordedRequest) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for event in events:
            if event is wire.HOLD:
                if not self._hold(turn, req):
                    return
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _hold(self, turn: Turn, req: RecordedRequest) -> bool:
        """Wait until ``turn.hold`` is set; False if the client hung up or the server stops first."""
        model = self.server.model
        while turn.hold is not None and not turn.hold.is_set():
            if model._stopping.is_set():
                return False
            if self._client_gone(0.02):
                req.disconnected = True
                return False
        return True

    def _send_raw(self, env: Envelope) -> None:
        """Replay a raw envelope with the framing it asks for."""
        self.send_response(env.status, env.reason)
        if env.content_type is not None:
            self.send_header("content-type", env.content_type)
        for name, value in env.headers:
            self.send_header(name, value)
        if env.framing == "length":
            length = len(env.body) if env.declared_length is None else env.declared_length
            self.send_header("content-length", str(length))
        elif env.framing in ("chunked", "abort"):
            self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        if env.framing in ("length", "close"):
            self.wfile.write(env.body)
        else:
            size = env.chunk_size or max(len(env.body), 1)
            for start in range(0, len(env.body), size):
                piece = env.body[start : start + size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            if env.framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- dispatch --------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        """Model listings and anything else a client probes."""
        split = urlsplit(self.path)
        self._record_only("GET", split.path, split.query, b"")
        if split.path.rstrip("/") in ("/v1/models", "/v1beta/models", "/models"):
            self._send_json(200, {"object": "list", "data": [], "models": []})
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {split.path}"}})

    def do_POST(self) -> None:
        """Serve one model request."""
        model = self.server.model
        split = urlsplit(self.path)
        raw = self._read_body()
        req = self._record_only("POST", split.path, split.query, raw, record=False)
        api, op = _classify(split.path)
        body = req.body if isinstance(req.body, dict) else {}
        try:
            if api is None:
                model._record(req)
                self._send_json(404, {"error": {"message": f"no route for POST {split.path}"}})
                return
            aux = wire.auxiliary_answer(api, op, body, req.text)
            if aux is not None:
                req.auxiliary = True
                model._record(req)
                self._send_json(200, aux)
                return
            turn = model._take(api, req.text)
            req.turn = turn
            model._record(req)
            self._serve_turn(api, op, split.path, body, req, turn)
        except (BrokenPipeError, ConnectionResetError):
            req.disconnected = True
        finally:
            req.finished.set()
            model._changed()

    def _record_only(self, method: str, path: str, query: str, raw: bytes, *, record: bool = True) -> RecordedRequest:
        headers = {k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        params = {k: ("<redacted>" if k == "key" else v) for k, v in parse_qsl(query)}
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = None
        api, _ = _classify(path)
        req = RecordedRequest(api=api, method=method, path=path, query=params, headers=headers, body=body, text=text)
        if record:
            self.server.model._record(req)
            req.finished.set()
        return req

    def _serve_turn(self, api: Api, op: str, path: str, body: dict[str, Any], req: RecordedRequest, turn: Turn) -> None:
        if turn.hang:
            self._pause(float("inf"), req)
            self.close_connection = True
            return
        if turn.delay and not self._pause(turn.delay, req):
            self.close_connection = True
            return
        model = self.server.model
        if turn.envelope is not None:
            self._send_raw(turn.envelope)
            return
        if turn.status >= 400:
            self._send_json(turn.status, wire.error_body(api, turn.status, turn.error_message))
            return
        stream = wire.wants_stream(api, op, body, req.query)
        answer = wire.Answer(
            text=turn.text,
            tool=wire.tool_call(api, turn.tool) if turn.tool else None,
            model=wire.model_name(api, path, body),
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            next_id=model.next_id,
            deltas=turn.deltas,
            hold=turn.hold is not None,
        )
        if api == "openai" and op == "chat":
            payload = wire.openai_chat(answer, stream)
        elif api == "openai":
            payload = wire.openai_responses(answer, stream)
        elif api == "gemini":
            payload = wire.gemini(answer, stream)
        else:
            payload = wire.anthropic(answer, stream)
        if isinstance(payload, dict):
            self._send_json(200, payload)
        else:
            self._send_sse(payload, turn, req)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted: ``python -m tests.support.model_server --port N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--answer", default="ok", help="the default answer text")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args(argv)
    server = ModelServer(port=args.port, default=Turn.answer(args.answer, delay=args.delay))
    server.start()
    print(f"model server listening on {server.url} (openai base {server.openai_base_url})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
