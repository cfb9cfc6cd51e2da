"""The SDK runtimes through their real SDKs against the loopback model server.

Happy path (text, usage, session id, details, progressive streaming), every error mapping
(HTTP statuses, refused connections, timeouts, missing or unusable keys), environment handling,
and cancellation that leaves no connection, task or warning behind.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
import warnings
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from sdk_support import KEY, Sdk
from support.cli_harness import token
from support.model_server import Envelope, ModelServer, RecordedRequest, Turn

from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes import load_runtime
from mcp_orchestrator.runtimes.base import OutputSink, StepOutcome, WorkerRuntime

pytestmark = pytest.mark.anyio

DEFAULT_MODEL = {"openai_sdk": "gpt-5.5", "google_sdk": "gemini-2.5-flash"}


class SignalSink(OutputSink):
    """An output sink that announces every write."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.wrote = anyio.Event()

    def write(self, data: bytes) -> None:
        """Take the chunk and wake whoever waits for output."""
        super().write(data)
        self.wrote.set()


async def request_for(server: ModelServer, tok: str, *, hanging: bool = False) -> RecordedRequest:
    """The request whose body carries ``tok`` (waited for off the event loop)."""
    return await anyio.to_thread.run_sync(lambda: server.wait_for_request(tok, hanging=hanging, timeout=10))


async def disconnected(server: ModelServer, req: RecordedRequest) -> bool:
    """Whether the server saw the client hang up on ``req`` (within five seconds)."""
    return await anyio.to_thread.run_sync(lambda: server.wait_for(lambda _: req.disconnected, 5))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_answer_text_usage_and_details(sdk: Sdk) -> None:
    """A plain answer: text, usage, response id as session, details, spool and progress reports."""
    tok = token()
    sdk.server.script(Turn.answer(f"the answer {tok}", input_tokens=123, output_tokens=45), api=sdk.api, match=tok)
    with anyio.fail_after(15):
        out = await sdk.run(f"question {tok}")
    assert out.text == f"the answer {tok}"
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.total_tokens) == (123, 45, 168)  # type: ignore[union-attr]
    assert out.exit_code is None
    assert out.session_id is not None and out.session_id.startswith("resp_" if sdk.api == "openai" else "gem_")
    endpoint = sdk.server.openai_base_url if sdk.api == "openai" else sdk.server.url
    assert out.details["model"] == DEFAULT_MODEL[sdk.mode]
    assert out.details["endpoint"] == endpoint
    assert out.details["finish_reason"] == ("completed" if sdk.api == "openai" else "stop")
    (spool,) = sdk.files()
    assert spool.read_text() == out.text
    assert sdk.reports[0].startswith(f"{sdk.api}: started (model {DEFAULT_MODEL[sdk.mode]}")
    assert sdk.reports[-1] == f"{sdk.api}: done (168 tokens)"
    req = await request_for(sdk.server, tok)
    if sdk.api == "openai":
        assert req.path == "/v1/responses"
        assert req.body["stream"] is True and req.body["model"] == "gpt-5.5"
        assert req.headers["authorization"] == "<redacted>"
    else:
        assert req.path == "/v1/models/gemini-2.5-flash:streamGenerateContent"
        assert req.query == {"alt": "sse"}
        assert req.headers["x-goog-api-key"] == "<redacted>"
    assert len(sdk.server.matching(tok)) == 1  # no retries, no auxiliary calls


async def test_worker_model_name_is_used(sdk: Sdk) -> None:
    """The worker's model name replaces the default."""
    tok = token()
    sdk.server.script(Turn.answer("fine"), api=sdk.api, match=tok)
    with anyio.fail_after(15):
        out = await sdk.run(f"named {tok}", model_name="custom-model-7")
    assert out.details["model"] == "custom-model-7"
    req = await request_for(sdk.server, tok)
    assert "custom-model-7" in (req.body["model"] if sdk.api == "openai" else req.path)


async def test_deltas_reach_the_output_as_they_arrive(sdk: Sdk) -> None:
    """The server holds the stream after the first piece: the first piece must already be in the output."""
    tok = token()
    hold = threading.Event()
    sdk.server.script(Turn.stream("first piece, ", "second piece, ", "third piece", hold=hold), api=sdk.api, match=tok)
    ctx = sdk.context(f"stream {tok}")
    sink = SignalSink(ctx.output.spool_path)  # type: ignore[arg-type]
    ctx.output = sink
    result: list[StepOutcome] = []

    async def step() -> None:
        result.append(await sdk.runtime().run_step(ctx))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(step)
            with anyio.fail_after(10):
                await sink.wrote.wait()
            assert sink.excerpt() == ("first piece, ", False)
            assert not result
            hold.set()
    finally:
        sink.close()
    assert result[0].text == "first piece, second piece, third piece"
    assert sink.spool_path is not None
    assert sink.spool_path.read_text() == result[0].text


@pytest.mark.parametrize(
    ("status", "failure_class"),
    [
        (401, "auth"),
        (403, "auth"),
        (429, "rate_limited"),
        (500, "unavailable"),
        (503, "unavailable"),
        (404, "process_error"),
    ],
)
async def test_http_errors_map_to_failure_classes(sdk: Sdk, status: int, failure_class: str) -> None:
    """Each HTTP error status becomes its shared failure class; nothing is quarantined, nothing retried."""
    tok = token()
    sdk.server.script(Turn.error(status, f"scripted {status}"), api=sdk.api, match=tok)
    with anyio.fail_after(15), pytest.raises(RunFailure) as caught:
        await sdk.run(f"fail {tok}")
    assert caught.value.failure_class == failure_class
    assert f"HTTP {status}" in caught.value.message
    assert f"scripted {status}" in caught.value.message
    assert not [p for p in sdk.files() if "quarantine" in p.name]
    assert len(sdk.server.matching(tok)) == 1


async def test_connection_refused_is_unavailable(sdk: Sdk) -> None:
    """Nobody listening on the base URL: unavailable, quickly."""
    url = f"http://127.0.0.1:{free_port()}"
    var = "OPENAI_BASE_URL" if sdk.api == "openai" else "GOOGLE_GEMINI_BASE_URL"
    with anyio.fail_after(10), pytest.raises(RunFailure) as caught:
        await sdk.run("refused", runtime=sdk.runtime(sdk.environ(**{var: url})))
    assert caught.value.failure_class == "unavailable"
    assert "ConnectError" in caught.value.message and url in caught.value.message


@pytest.mark.parametrize(
    "url",
    ["http://user:pw@127.0.0.1:notaport/v1", "http://[broken/v1", "http://127.0.0.1:99999/", "ftp://x/", "http:///v1"],
)
async def test_unusable_base_url_is_unavailable_before_any_request(sdk: Sdk, url: str) -> None:
    """A base URL that cannot work fails at once as unavailable, without showing its credentials."""
    var = "OPENAI_BASE_URL" if sdk.api == "openai" else "GOOGLE_GEMINI_BASE_URL"
    with anyio.fail_after(10), pytest.raises(RunFailure) as caught:
        await sdk.run("bad url", runtime=sdk.runtime(sdk.environ(**{var: url})))
    assert caught.value.failure_class == "unavailable"
    assert var in caught.value.message and "pw" not in caught.value.message


@pytest.mark.parametrize("when", ["before the answer", "mid-stream"])
async def test_silent_server_with_read_timeout_is_stalled(sdk: Sdk, when: str) -> None:
    """With a read timeout set, a server that goes silent ends the step as stalled, and the socket is closed."""
    tok = token()
    turn = Turn.never() if when == "before the answer" else Turn.stream("partial ", "never", hold=threading.Event())
    sdk.server.script(turn, api=sdk.api, match=tok)
    with anyio.fail_after(10), pytest.raises(RunFailure) as caught:
        await sdk.run(f"silent {tok}", runtime=sdk.runtime(read_timeout=0.3))
    assert caught.value.failure_class == "stalled"
    assert "ReadTimeout" in caught.value.message
    assert await disconnected(sdk.server, await request_for(sdk.server, tok))


@pytest.mark.parametrize("key", ["", "   ", "sk-\u00e9t\u00e9", "two\nlines"])
async def test_missing_or_unusable_key_is_auth_before_any_request(sdk: Sdk, key: str) -> None:
    """No key (or one no HTTP header can carry) fails as auth, naming the variable, before any request."""
    tok = token()
    var = "OPENAI_API_KEY" if sdk.api == "openai" else "GEMINI_API_KEY"
    with pytest.raises(RunFailure) as caught:
        await sdk.run(f"nokey {tok}", runtime=sdk.runtime(sdk.environ(**{var: key})))
    assert caught.value.failure_class == "auth"
    assert var in caught.value.message
    if key.strip():
        assert key.strip() not in caught.value.message
    assert sdk.server.matching(tok) == []


async def test_google_api_key_is_the_gemini_fallback(model_server: ModelServer, tmp_path: Path) -> None:
    """The google runtime takes GOOGLE_API_KEY when GEMINI_API_KEY is unset."""
    sdk = Sdk(mode="google_sdk", server=model_server, tmp=tmp_path)
    tok = token()
    model_server.script(Turn.answer("via google key"), api="gemini", match=tok)
    env = {"GOOGLE_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": model_server.url}
    with anyio.fail_after(15):
        out = await sdk.run(f"fallback key {tok}", runtime=sdk.runtime(env))
    assert out.text == "via google key"


async def test_registry_runtime_reads_the_process_environment_at_each_step(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_runtime`` builds the runtime with no arguments; it reads os.environ at each step."""
    runtime: WorkerRuntime = load_runtime(sdk.mode)
    assert runtime.mode == sdk.mode
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RunFailure) as caught:
        await sdk.run("no env yet", runtime=runtime)
    assert caught.value.failure_class == "auth"
    for name, value in sdk.environ().items():
        monkeypatch.setenv(name, value)
    tok = token()
    sdk.server.script(Turn.answer("from the environment"), api=sdk.api, match=tok)
    with anyio.fail_after(15):
        out = await sdk.run(f"env now {tok}", runtime=runtime)
    assert out.text == "from the environment"


async def test_openai_continues_a_responses_session(model_server: ModelServer, tmp_path: Path) -> None:
    """continue_session with an earlier response id sends previous_response_id; another kind of id is not sent."""
    sdk = Sdk(mode="openai_sdk", server=model_server, tmp=tmp_path)
    tok = token()
    model_server.script(Turn.answer("again"), Turn.answer("fresh"), api="openai", match=tok)
    with anyio.fail_after(15):
        out = await sdk.run(f"resume {tok}", session_id="resp_000042", continue_session=True)
        other = await sdk.run(f"thread {tok}", session_id="019a-thread-id", continue_session=True)
    assert out.details["resumed"] is True and "resumed" not in other.details
    first, second = model_server.matching(tok)
    assert first.body["previous_response_id"] == "resp_000042"
    assert "previous_response_id" not in second.body


@pytest.mark.parametrize("when", ["before the answer", "mid-stream"])
async def test_cancellation_closes_the_connection_cleanly(sdk: Sdk, when: str) -> None:
    """Cancelled while the server never answers, or mid-stream: the socket closes; no task or warning is left."""
    tok = token()
    hold = threading.Event()
    turn = Turn.never() if when == "before the answer" else Turn.stream("partial ", "never sent", hold=hold)
    sdk.server.script(turn, api=sdk.api, match=tok)
    ctx = sdk.context(f"cancel {tok}")
    sink = SignalSink(ctx.output.spool_path)  # type: ignore[arg-type]
    ctx.output = sink
    tasks_before = asyncio.all_tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sdk.runtime().run_step, ctx)
                    req = await request_for(sdk.server, tok, hanging=turn.hang)
                    if turn.hold is not None:
                        await sink.wrote.wait()
                    tg.cancel_scope.cancel()
        finally:
            sink.close()
        assert await disconnected(sdk.server, req)
        await anyio.lowlevel.checkpoint()
        gc.collect()
        await anyio.lowlevel.checkpoint()
    assert [str(w.message) for w in caught] == []
    assert asyncio.all_tasks() == tasks_before
    assert not [r for r in sdk.reports if "failed" in r]


async def test_openai_minimal_stream_without_deltas(model_server: ModelServer, tmp_path: Path) -> None:
    """The smallest stream that completes a turn (no text deltas): the final text still reaches the output."""
    sdk = Sdk(mode="openai_sdk", server=model_server, tmp=tmp_path)
    tok = token()
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "minimal answer"}]}
    body = (
        f"event: response.output_item.done\ndata: {json.dumps({'type': 'response.output_item.done', 'item': item})}\n\n"
        f"event: response.completed\ndata: "
        f"{json.dumps({'type': 'response.completed', 'response': {'id': 'resp_min', 'output': [item]}})}\n\n"
    )
    model_server.script(Turn.raw(Envelope(body=body.encode(), content_type="text/event-stream")), match=tok)
    with anyio.fail_after(15):
        out = await sdk.run(f"minimal {tok}")
    assert (out.text, out.session_id, out.usage) == ("minimal answer", "resp_min", None)
    assert sdk.files()[0].read_text() == "minimal answer"
