"""The common step flow of the two SDK runtimes (``openai_sdk``, ``google_sdk``): credentials, the base URL,
the step's HTTP client and its lifetime, progress reports, and the answer text as it streams (``TextSink``).
The wire capture is in ``_sdk_wire``, the error seam in ``_sdk_seam``.

Only the SDK runtime modules import this one, so neither ``httpx2`` nor a vendor SDK is loaded until one of
them runs. Each step builds its own ``httpx2.AsyncClient`` and hands it to the SDK; the client's event hooks
set our timeouts on every request (a connect timeout; no read timeout, since the engine's stall watchdog owns
silence), whatever timeout the SDK asks for, and tee the response body into a bounded ``WireCapture``, so an
answer we cannot understand is quarantined exactly as it came off the wire.
"""

from __future__ import annotations

import os
import time
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
import httpx2

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes._sdk_seam import Seam, want
from mcp_orchestrator.runtimes._sdk_wire import WireCapture, drain, public_endpoint, tls_context, url_problem
from mcp_orchestrator.runtimes.base import StepContext, StepOutcome, WorkerRuntime

__all__ = ["SdkRuntime", "Seam", "TextSink", "WireCapture", "drain", "public_endpoint", "tls_context", "want"]

_CLOSE_GRACE = 5.0


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
        problem = url_problem(base_url)
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
