"""Secrets never reach logs, replays, the store or tool results, whatever path they take.

Known secrets go in through the task text (an API key, a bearer header, a private key, the value of a
credential variable), through the worker's output (the mock echoes its prompt), through error messages
(a scripted failure names its class) and through the panic reason. Afterwards every file under the data
directory and every tool result and resource is scanned for each of them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents
from obs_support import call, read_all

from mcp_orchestrator.config import Settings
from mcp_orchestrator.observability.redact import REDACTED, Redactor
from mcp_orchestrator.server import build_server

ENV_SECRET = "zq81PlainEnvValue94XJ"  # no known shape: only the credential variable's value betrays it
API_KEY = "sk-test-Qm7Pz2Lr8Vw3Xy"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.p.s"
KEY_BODY = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Pp"
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----"
ERROR_SECRET = "ghp_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"
NEEDLES = (ENV_SECRET, "Qm7Pz2Lr8Vw3Xy", "eyJhbGciOiJIUzI1NiJ9", KEY_BODY, "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe")


def _clean(blob: str | bytes, where: str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for needle in NEEDLES:
        assert needle not in text, f"{needle[:8]}... leaked into {where}"


@pytest.mark.anyio
async def test_no_secret_reaches_anything_written_or_returned(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_SERVICE_TOKEN", ENV_SECRET)
    task = f"{PRIVATE_KEY}\nuse {API_KEY} with {BEARER} and {ENV_SECRET}"
    assert len(task) < 200  # the mock echoes the first 200 characters of its prompt: all of them
    results: list[Any] = []
    async with Client(build_server(settings)) as client:

        async def tool(name: str, /, **args: Any) -> dict[str, Any]:
            out = await call(client, name, **args)
            results.append(out)
            return out

        async def resource(uri: str) -> str:
            [content] = (await client.read_resource(uri)).contents
            assert isinstance(content, TextResourceContents)
            results.append(content.text)
            return content.text

        await tool("spawn_worker", agentId="a", name="w", model="mock")
        done = await tool("dispatch_task", agentId="a", task=task, waitSeconds=20)
        assert done["status"] == "completed"
        # The worker got the task as given: the mock's answer carries a digest of its real prompt.
        assert hashlib.sha256(task.encode()).hexdigest()[:16] in done["steps"][0]["output"]
        assert REDACTED in done["steps"][0]["output"]
        assert REDACTED in done["task"]
        failed = await tool(
            "dispatch_task", agentId="a", task=f"[[mock fail={ERROR_SECRET}]] {API_KEY}", waitSeconds=20
        )
        assert failed["status"] == "failed"
        assert REDACTED in failed["error"]["message"]
        for run in (done, failed):
            await tool("get_run", runId=run["runId"])
            await resource(f"runs://{run['runId']}")
            await resource(f"runs://{run['runId']}/summary")
            await resource(f"runs://{run['runId']}/steps/0/output")
            await resource(f"replays://{run['runId']}")
        await tool("list_worker_runs")
        await tool("diag")
        await tool("optimize")
        await tool("panic", agentId="a", reason=f"leaked {API_KEY}")
    for i, result in enumerate(results):
        _clean(json.dumps(result), f"tool result #{i}")
    files = [p for p in sorted(settings.home.rglob("*")) if p.is_file()]
    assert any(p.name == "events.jsonl" for p in files)
    assert any(p.name == "replay.json" for p in files)
    assert any(p.name == "output.log" for p in files)
    for path in files:
        _clean(path.read_bytes(), str(path.relative_to(settings.home)))
    _clean(read_all(settings.home), "the data directory")


def test_patterns_and_credential_values() -> None:
    r = Redactor({"MY_API_TOKEN": "v4lue-of-the-token", "AUTH_MODE": "enabled", "PATH": "/usr/bin"})
    assert r.text("token v4lue-of-the-token here") == f"token {REDACTED} here"
    assert r.text("auth is enabled") == "auth is enabled"  # a flag, not a secret: no digits, short
    assert r.text("/usr/bin/env") == "/usr/bin/env"
    for secret in (
        API_KEY,
        BEARER,
        ERROR_SECRET,
        "AIzaSyA1234567890abcdefghijkl",
        "xoxb-1234567890-abc",
        "api_key=abcd1234efgh",
    ):
        assert r.text(f"x {secret} y") == f"x {REDACTED} y", secret
    assert r.text(PRIVATE_KEY) == REDACTED
    # An excerpt may cut a key block in two: the part before the cut and the part after are both caught.
    assert KEY_BODY not in r.text(f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n…[100 bytes cut]")
    assert r.text(f"log line\n{KEY_BODY}\n{KEY_BODY}\n-----END PRIVATE KEY-----") == f"log line\n{REDACTED}"
    assert r.data({"a": [API_KEY, 1, None], "b": {"c": BEARER}}) == {"a": [REDACTED, 1, None], "b": {"c": REDACTED}}
    assert r.spans("nothing to see") == []


def test_files_are_redacted_across_chunk_boundaries(tmp_path: Path) -> None:
    r = Redactor({"SERVICE_PASSWORD": ENV_SECRET})
    raw = b"\xff\xfe binary " + b"a" * 50 + f" {API_KEY} ".encode() + b"b" * 37 + ENV_SECRET.encode() + b" \xe2\x82\xac"
    path = tmp_path / "output.log"
    for chunk in (7, 16, 64, 4096):
        path.write_bytes(raw)
        assert r.file(path, chunk=chunk, overlap=48)
        out = path.read_bytes()
        assert out.startswith(b"\xff\xfe binary ")  # bytes that are not UTF-8 survive as they were
        assert out.endswith(b" \xe2\x82\xac")
        assert out.count(REDACTED.encode()) == 2, (chunk, out)
        _clean(out, f"chunk {chunk}")
    clean = tmp_path / "clean.log"
    clean.write_bytes(b"nothing secret\n")
    before = clean.stat().st_mtime_ns
    assert not r.file(clean)
    assert clean.stat().st_mtime_ns == before  # untouched when there is nothing to redact
    assert r.tree(tmp_path) == []  # both already clean now
