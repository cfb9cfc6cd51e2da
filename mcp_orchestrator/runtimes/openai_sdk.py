"""The ``openai_sdk`` runtime: one step as one streamed call to the OpenAI Responses API.

The key comes from ``OPENAI_API_KEY`` and the base URL from ``OPENAI_BASE_URL`` (default
``https://api.openai.com/v1``), read at each step; the model is the worker's ``model_name`` or
``gpt-5.5``. The SDK never retries (``max_retries=0``): retrying is the scheduler's business.

Text deltas (``response.output_text.delta``) reach the step output as they arrive. The answer is
the one ``response.completed`` (or ``response.incomplete``) carries; a stream that ends without
it, or any event that cannot be read, is ``bad_output`` with the raw response quarantined. A
``response.failed`` or ``error`` event keeps the class of its error code. With
``continue_session`` and a worker session id from an earlier Responses call (``resp_...``), the
step continues that conversation through ``previous_response_id``.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.runtimes._sdk_common import SdkRuntime, Seam, TextSink, drain, want
from mcp_orchestrator.runtimes.base import StepContext

try:
    import openai
except ImportError as e:  # pragma: no cover - the package depends on it
    raise ImportError("the openai_sdk runtime needs the OpenAI SDK: pip install 'openai>=3,<4'") from e

__all__ = ["OpenAISdkRuntime"]

_STARTED = ("response.created", "response.in_progress", "response.queued")
_TERMINAL = ("response.completed", "response.incomplete")


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = want(body, "message", str) if isinstance(body, dict) else None
    if message is None and isinstance(body, str) and body.strip():
        message = body.strip()[:200]
    return message or exc.response.reason_phrase or "no message"


class _Events:
    """Reads the Responses event stream; the SDK's event objects are lax, so every field is checked."""

    def __init__(self, seam: Seam, sink: TextSink) -> None:
        self.seam = seam
        self.sink = sink
        self.count = 0
        self.last = "none"
        self.response_id: str | None = None
        self.final: Any = None
        self.terminal = ""

    def feed(self, event: object) -> bool:
        """Take one event; True once the response is complete."""
        self.count += 1
        self.sink.alive()
        kind = want(event, "type", str)
        if kind is None:
            shown = f" (a JSON {type(event).__name__})" if type(event).__module__ == "builtins" else ""
            raise self.seam.bad_output(f"event {self.count} has no type{shown}")
        self.last = kind
        if kind in _STARTED:
            self.response_id = want(want(event, "response", object), "id", str) or self.response_id
        elif kind == "response.output_text.delta":
            delta = want(event, "delta", str)
            if delta is None:
                raise self.seam.bad_output(f"event {self.count} ({kind}) has no text delta")
            self.sink.write(delta)
        elif kind == "error":
            raise self.seam.error_object(event, documented=True)
        elif kind == "response.failed":
            error = want(want(event, "response", object), "error", object)
            raise self.seam.error_object(error if error is not None else {}, documented=True)
        elif kind in _TERMINAL:
            final = want(event, "response", object)
            if want(final, "id", str) is None:
                raise self.seam.bad_output(f"{kind} without a response object that has an id")
            self.final, self.terminal = final, kind
            return True
        return False

    def outcome(self) -> tuple[str, Usage | None, str | None, dict[str, Any]]:
        """The step's text, usage, response id and details, or ``bad_output``."""
        final = self.final
        if final is None:
            raise self.seam.bad_output(
                f"the stream ended before response.completed ({self.count} events, last {self.last!r})"
            )
        text = self.sink.settle(_output_text(final))
        finish = want(final, "status", str) or "completed"
        if self.terminal == "response.incomplete":
            finish = want(want(final, "incomplete_details", object), "reason", str) or "incomplete"
        if not text.strip():
            raise self.seam.bad_output(f"the response ended ({finish}) without any text")
        usage = want(final, "usage", object)
        tokens = [want(usage, name, int) for name in ("input_tokens", "output_tokens", "total_tokens")]
        found = None
        if any(t is not None for t in tokens):
            inp, out = max(tokens[0] or 0, 0), max(tokens[1] or 0, 0)
            found = Usage(input_tokens=inp, output_tokens=out, total_tokens=max(tokens[2] or inp + out, 0))
        details = {"finish_reason": finish, "events": self.count, "api": "responses"}
        return text, found, want(final, "id", str) or self.response_id, details


def _output_text(response: object) -> str:
    parts: list[str] = []
    for item in want(response, "output", list) or []:
        if want(item, "type", str) != "message":
            continue
        for part in want(item, "content", list) or []:
            kind = want(part, "type", str)
            if kind == "output_text":
                parts.append(want(part, "text", str) or "")
            elif kind == "refusal":
                parts.append(want(part, "refusal", str) or "")
    return "".join(parts)


class OpenAISdkRuntime(SdkRuntime):
    """Runs a step through ``openai.AsyncOpenAI`` (Responses API, streamed)."""

    mode = "openai_sdk"
    name = "openai"
    key_vars = ("OPENAI_API_KEY",)
    base_url_var = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-5.5"

    async def _answer(
        self, ctx: StepContext, seam: Seam, http: httpx2.AsyncClient, key: str, base_url: str
    ) -> tuple[str, Usage | None, str | None, dict[str, Any]]:
        previous = ctx.worker.session_id if ctx.continue_session else None
        extra: dict[str, Any] = {}
        if previous and previous.startswith("resp"):
            extra["previous_response_id"] = previous
        events = _Events(seam, TextSink(ctx))
        stream: Any = None
        try:
            client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, http_client=http)
            stream = await client.responses.create(model=seam.model, input=ctx.prompt, stream=True, **extra)
            if seam.capture.status != 200 or not seam.capture.is_sse:
                await drain(stream.response, seam.capture)
                seam.check_envelope()
            await ctx.report("openai: streaming")
            async for event in stream:
                if events.feed(event):
                    break
        except openai.APIStatusError as e:
            raise seam.http_status(e.status_code, _status_message(e)) from e
        except openai.APIConnectionError as e:
            raise seam.transport(e) from e
        except openai.APIError as e:
            # The SDK raises a bare APIError for an ``{"error": ...}`` object inside the stream.
            raise seam.error_object(e.body if e.body is not None else {"message": e.message}, documented=False) from e
        except httpx2.HTTPError as e:
            raise seam.transport(e) from e
        except ValueError as e:
            raise seam.unreadable(e, "an event that is not valid JSON text") from e
        except openai.OpenAIError as e:
            raise seam.fail("unavailable", f"the client could not be set up ({type(e).__name__}: {e})") from e
        finally:
            if stream is not None:
                with anyio.move_on_after(5, shield=True):
                    await stream.close()
        text, usage, session, details = events.outcome()
        if extra:
            details["resumed"] = True
        return text, usage, session, details
