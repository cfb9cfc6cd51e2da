"""Units of the SDK runtimes' shared seam, and the promise that unused SDKs cost nothing at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sdk_support import REPO, Sdk
from support.model_server import ModelServer

from mcp_orchestrator.runtimes._sdk_common import Seam, TextSink, WireCapture, public_endpoint, want


def test_server_import_loads_no_vendor_sdk() -> None:
    """Importing the server (and the runtime registry) imports neither openai nor google.genai."""
    code = (
        "import sys, mcp_orchestrator.server, mcp_orchestrator.runtimes;"
        "print('openai' in sys.modules, 'google.genai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("http://user:secret@127.0.0.1:8080/v1?key=abc#frag", "http://127.0.0.1:8080/v1"),
        ("http://[::1]:9/x", "http://[::1]:9/x"),
        ("http://host:notaport/", "<invalid URL>"),
    ],
)
def test_public_endpoint_drops_credentials(url: str, shown: str) -> None:
    """User info, query and fragment never reach a message or a detail."""
    assert public_endpoint(url) == shown


def test_want_reads_only_the_asked_type() -> None:
    """``want`` returns a field only when it has the expected type (booleans are not ints)."""

    class Obj:
        n = 3
        flag = True
        s = "x"

    assert want({"n": 3}, "n", int) == 3
    assert want({"n": "3"}, "n", int) is None
    assert want(Obj(), "flag", int) is None
    assert want(Obj(), "s", str) == "x"
    assert want(None, "anything", object) is None
    assert want("text", "n", int) is None


def _seam(sdk: Sdk, secret: str = "sk-secret-value") -> Seam:
    ctx = sdk.context("units")
    ctx.output.close()
    return Seam("openai_sdk", "openai", "http://127.0.0.1:1/v1", secret, WireCapture(), ctx, "gpt-5.5")


@pytest.fixture
def unit_sdk(model_server: ModelServer, tmp_path: Path) -> Sdk:
    """A harness for units that need only a step context."""
    return Sdk(mode="openai_sdk", server=model_server, tmp=tmp_path)


def test_text_sink_settles_with_the_final_text(unit_sdk: Sdk) -> None:
    """What the stream did not send is written at the end; the final text wins."""
    ctx = unit_sdk.context("sink")
    sink = TextSink(ctx)
    sink.write("Hel")
    sink.write("")
    assert sink.settle("Hello") == "Hello"
    assert sink.pieces == 2
    ctx.output.last_activity = 0.0
    sink.alive()
    assert ctx.output.last_activity > 0.0
    assert ctx.output.excerpt() == ("Hello", False)
    assert TextSink(ctx).settle("") == ""
    other = TextSink(ctx)
    other.write("streamed")
    assert other.settle("") == "streamed"
    ctx.output.close()


@pytest.mark.parametrize(
    ("error", "documented", "failure_class"),
    [
        ({"code": "rate_limit_exceeded", "message": "m"}, True, "rate_limited"),
        ({"code": 503, "status": "UNAVAILABLE", "message": "m"}, False, "unavailable"),
        ({"code": 429, "message": "m"}, False, "rate_limited"),
        ({"code": 400, "status": "INVALID_ARGUMENT", "message": "m"}, False, "process_error"),
        ({"type": "invalid_api_key", "message": "m"}, True, "auth"),
        ({"code": "invalid_prompt", "message": "m"}, True, "process_error"),
        ({"code": "mystery", "message": "m"}, False, "bad_output"),
        ({}, False, "bad_output"),
    ],
)
def test_error_objects_keep_a_recognised_class(
    unit_sdk: Sdk, error: dict[str, object], documented: bool, failure_class: str
) -> None:
    """Error objects in a 200 answer: known codes keep their class, unknown ones are process or output errors."""
    failure = _seam(unit_sdk).error_object(error, documented=documented)
    assert failure.failure_class == failure_class


def test_messages_are_scrubbed_and_bounded(unit_sdk: Sdk) -> None:
    """The key never survives in a message, whitespace collapses and long text is cut."""
    seam = _seam(unit_sdk)
    failure = seam.fail("unavailable", "boom sk-secret-value\n\n" + "x" * 1000)
    assert "sk-secret-value" not in failure.message
    assert "boom <redacted> x" in failure.message
    assert len(failure.message) <= 400


def test_capture_keeps_a_bounded_head() -> None:
    """The capture counts every byte and keeps at most ``cap``."""
    cap = WireCapture(cap=10)
    cap.feed(b"0123456")
    cap.feed(b"789abcdef")
    assert (bytes(cap.body), cap.total_bytes) == (b"0123456789", 16)
    cap.content_type = "Text/Event-Stream; charset=utf-8"
    assert cap.is_sse
