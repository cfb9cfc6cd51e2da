"""The envelope corpus: every malformed or truncated answer ends as a clear, classified failure.

Each ``fixtures/envelopes/*.json`` entry is replayed byte for byte by the loopback server to each
SDK runtime it names. The step must fail with the expected class and reason - never crash, never
hang, never succeed with an empty answer - and a ``bad_output`` must leave the raw response in
quarantine next to the step's output, with a reason file, and without the API key.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from sdk_support import API, KEY, MODES, Case, Mode, Sdk, load_corpus
from support.cli_harness import token
from support.model_server import Envelope, ModelServer, Turn

from mcp_orchestrator.errors import RunFailure

# google-genai warns (UserWarning) when it meets an enum value it does not know, e.g. a new finishReason.
pytestmark = pytest.mark.filterwarnings("ignore:.* is not a valid:UserWarning")

CORPUS = load_corpus()
CASES = [(case, mode) for case in CORPUS for mode in MODES if API[mode] in case.apis]


def test_corpus_is_well_formed() -> None:
    """Every entry loads, says what it is and what to expect, and the corpus covers both APIs."""
    assert len(CORPUS) >= 30
    for case in CORPUS:
        assert case.description, case.name
        assert case.expect in ("bad_output", "unavailable", "rate_limited", "auth", "process_error"), case.name
        assert all(case.reason_for(api) for api in case.apis), case.name
    assert {api for case in CORPUS for api in case.apis} == {"openai", "gemini"}
    assert sum(case.expect == "bad_output" for case in CORPUS) >= 25


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "mode"), CASES, ids=[f"{c.name}-{m.removesuffix('_sdk')}" for c, m in CASES])
async def test_envelope(case: Case, mode: Mode, model_server: ModelServer, tmp_path: Path) -> None:
    """The step fails with the entry's class and reason; ``bad_output`` quarantines the raw bytes."""
    sdk = Sdk(mode=mode, server=model_server, tmp=tmp_path)
    tok = token()
    model_server.script(Turn.raw(case.envelope), api=sdk.api, match=tok)
    with anyio.fail_after(15), pytest.raises(RunFailure) as caught:
        await sdk.run(f"corpus {case.name} {tok}")
    failure = caught.value
    reason = case.reason_for(sdk.api)
    assert failure.failure_class == case.expect, failure.message
    assert reason in failure.message
    assert KEY not in failure.message
    assert sdk.reports[-1] == f"{sdk.api}: failed ({case.expect})"
    quarantined = [p for p in sdk.files() if p.name.endswith(".quarantine")]
    if case.expect == "bad_output":
        assert len(quarantined) == 1, sdk.files()
        raw = quarantined[0].read_bytes()
        info = json.loads(quarantined[0].with_name(quarantined[0].name + ".json").read_text())
        assert str(quarantined[0]) in failure.message
        assert info["reason"] in failure.message
        assert info["httpStatus"] == case.envelope.status
        assert info["runtime"] == mode
        assert raw == case.envelope.body[: len(raw)]
        assert info["rawBytes"] == len(raw)
    else:
        assert quarantined == []
    for path in sdk.files():
        assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.anyio
async def test_huge_malformed_body_is_quarantined_within_the_cap(sdk: Sdk) -> None:
    """Three MiB of junk: the step fails, and quarantine keeps only the first MiB."""
    tok = token()
    junk = b"x" * (3 << 20)
    sdk.server.script(Turn.raw(Envelope(body=junk, content_type="text/event-stream")), api=sdk.api, match=tok)
    with anyio.fail_after(20), pytest.raises(RunFailure) as caught:
        await sdk.run(f"huge {tok}")
    assert caught.value.failure_class == "bad_output"
    (quarantined,) = [p for p in sdk.files() if p.name.endswith(".quarantine")]
    info = json.loads(quarantined.with_name(quarantined.name + ".json").read_text())
    assert quarantined.stat().st_size == 1 << 20
    assert info["captureTruncated"] is True
    assert info["responseBytes"] == len(junk)


@pytest.mark.anyio
async def test_key_echoed_by_the_server_is_scrubbed_everywhere(sdk: Sdk) -> None:
    """A server that echoes the key (in an error message, in a malformed body) never gets it written anywhere."""
    tok = token()
    echo_error = json.dumps({"error": {"message": f"bad key {KEY}", "code": 401, "status": "UNAUTHENTICATED"}})
    sdk.server.script(Turn.raw(Envelope(status=401, body=echo_error.encode())), api=sdk.api, match=tok)
    with anyio.fail_after(15), pytest.raises(RunFailure) as caught:
        await sdk.run(f"echo error {tok}")
    assert caught.value.failure_class == "auth"
    assert KEY not in caught.value.message
    assert "bad key <redacted>" in caught.value.message

    echo_body = f"data: not json, but the key: {KEY}\n\n".encode()
    sdk.server.script(Turn.raw(Envelope(body=echo_body, content_type="text/html")), api=sdk.api, match=tok)
    with anyio.fail_after(15), pytest.raises(RunFailure) as caught:
        await sdk.run(f"echo body {tok}")
    assert caught.value.failure_class == "bad_output"
    (quarantined,) = [p for p in sdk.files() if p.name.endswith(".quarantine")]
    assert b"the key: <redacted>" in quarantined.read_bytes()
    for path in sdk.files():
        assert KEY.encode() not in path.read_bytes(), path
    assert all(KEY not in line for line in sdk.reports)
