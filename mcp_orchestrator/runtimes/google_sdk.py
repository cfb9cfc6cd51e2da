"""The ``google_sdk`` runtime: one step as one streamed Gemini ``streamGenerateContent`` call (google-genai).

The key comes from ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``) and the base URL from
``GOOGLE_GEMINI_BASE_URL`` (default ``https://generativelanguage.googleapis.com/``), read at each
step; the model is the worker's ``model_name`` or ``gemini-2.5-flash``. The SDK never retries,
never calls functions and never continues a stream on its own: each step is exactly one request.

Text parts reach the step output chunk by chunk (thought parts are left out). A Gemini stream has
no closing event: the answer is complete when a candidate carries a ``finishReason``. A stream
that ends without one, or a chunk that cannot be read, is ``bad_output`` with the raw response
quarantined; an answer blocked for safety (or a blocked prompt) is a ``process_error``.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.runtimes._sdk_common import SdkRuntime, Seam, TextSink, tls_context, want
from mcp_orchestrator.runtimes.base import StepContext

try:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types
except ImportError as e:  # pragma: no cover - the package depends on it
    raise ImportError("the google_sdk runtime needs the Google Gen AI SDK: pip install 'google-genai>=3,<4'") from e

__all__ = ["GoogleSdkRuntime"]

_DONE = frozenset({"STOP", "MAX_TOKENS"})
_BLOCKED_WORDS = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED", "SPII", "LANGUAGE")


def _name(value: object) -> str | None:
    """An enum's value or a plain string (the SDK keeps unknown enum values as strings)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


class _Chunks:
    """Reads the streamed ``GenerateContentResponse`` chunks."""

    def __init__(self, seam: Seam, sink: TextSink) -> None:
        self.seam = seam
        self.sink = sink
        self.count = 0
        self.finish: str | None = None
        self.blocked: str | None = None
        self.response_id: str | None = None
        self.model_version: str | None = None
        self.usage: object = None

    def feed(self, chunk: object) -> None:
        """Take one chunk."""
        self.count += 1
        self.sink.alive()
        if self.count == 1:
            self.seam.check_envelope()
        self.response_id = want(chunk, "response_id", str) or self.response_id
        self.model_version = want(chunk, "model_version", str) or self.model_version
        self.usage = want(chunk, "usage_metadata", object) or self.usage
        self.blocked = _name(want(want(chunk, "prompt_feedback", object), "block_reason", object)) or self.blocked
        candidates = want(chunk, "candidates", list) or []
        if not candidates:
            return
        candidate = candidates[0]
        for part in want(want(candidate, "content", object), "parts", list) or []:
            if not want(part, "thought", bool):
                self.sink.write(want(part, "text", str) or "")
        self.finish = _name(want(candidate, "finish_reason", object)) or self.finish

    def outcome(self) -> tuple[str, Usage | None, str | None, dict[str, Any]]:
        """The step's text, usage, response id and details, or the failure the stream ended in."""
        self.seam.check_envelope()
        text = self.sink.text
        if self.finish is None:
            if self.blocked:
                raise self.seam.fail("process_error", f"the prompt was blocked ({self.blocked})")
            raise self.seam.bad_output(f"the stream ended without a finishReason ({self.count} chunks)")
        if any(word in self.finish for word in _BLOCKED_WORDS):
            raise self.seam.fail("process_error", f"the answer was blocked ({self.finish}) after {len(text)} chars")
        if self.finish not in _DONE:
            raise self.seam.bad_output(f"the answer ended with finishReason {self.finish}")
        if not text.strip():
            raise self.seam.bad_output(f"the answer finished ({self.finish}) without any text")
        inp = want(self.usage, "prompt_token_count", int)
        out = want(self.usage, "candidates_token_count", int)
        thoughts = want(self.usage, "thoughts_token_count", int) or 0
        total = want(self.usage, "total_token_count", int)
        usage = None
        if inp is not None or out is not None or total is not None:
            output = max((out or 0) + thoughts, 0)
            inp = max(inp or 0, 0)
            usage = Usage(input_tokens=inp, output_tokens=output, total_tokens=max(total or inp + output, 0))
        details: dict[str, Any] = {"finish_reason": self.finish.lower(), "events": self.count, "api": "gemini"}
        if self.model_version:
            details["model_version"] = self.model_version
        return text, usage, self.response_id, details


class GoogleSdkRuntime(SdkRuntime):
    """Runs a step through ``google.genai.Client(...).aio.models.generate_content_stream``."""

    mode = "google_sdk"
    name = "gemini"
    key_vars = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    base_url_var = "GOOGLE_GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com/"
    default_model = "gemini-2.5-flash"

    async def _answer(
        self, ctx: StepContext, seam: Seam, http: httpx2.AsyncClient, key: str, base_url: str
    ) -> tuple[str, Usage | None, str | None, dict[str, Any]]:
        try:
            client = genai.Client(
                api_key=key,
                vertexai=False,
                http_options=genai_types.HttpOptions(
                    base_url=base_url,
                    httpx_async_client=http,
                    # Without a context of ours the client builds two (its unused sync client's and a
                    # websocket one), each loading the CA store: ~50 ms of CPU per step.
                    client_args={"verify": tls_context()},
                    async_client_args={"ssl": tls_context()},
                ),
            )
        except (ValueError, ImportError) as e:
            raise seam.fail("unavailable", f"the client could not be set up ({type(e).__name__}: {e})") from e
        config = genai_types.GenerateContentConfig(
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )
        chunks = _Chunks(seam, TextSink(ctx))
        stream: Any = None
        try:
            stream = await client.aio.models.generate_content_stream(
                model=seam.model, contents=ctx.prompt, config=config
            )
            await ctx.report("gemini: requesting")
            async for chunk in stream:
                chunks.feed(chunk)
        except genai_errors.APIError as e:
            status = seam.capture.status
            if status == 200:
                # An error object inside a 200 stream.
                raise seam.error_object(_error_body(e), documented=False) from e
            if status is None:
                status = e.code if isinstance(e.code, int) else 0
            raise seam.http_status(status, e.message or str(e.status or "no message")) from e
        except httpx2.HTTPError as e:
            raise seam.transport(e) from e
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            # google-genai raises all of these on malformed chunks (see fixtures/envelopes).
            raise seam.unreadable(e, "a chunk that cannot be read") from e
        finally:
            if stream is not None:
                with anyio.move_on_after(5, shield=True):
                    await stream.aclose()
            client.close()
        return chunks.outcome()


def _error_body(exc: Any) -> object:
    details = exc.details
    if isinstance(details, dict) and isinstance(details.get("error"), dict):
        return details["error"]
    return details if isinstance(details, dict) else {"message": exc.message}
