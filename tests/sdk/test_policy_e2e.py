"""Issue #4 acceptance through the real MCP server: runtime choice, fallback and credential hygiene.

``python -m mcp_orchestrator -v serve`` runs over stdio (its stderr captured to a file), driven by the SDK
``Client``. Its environment points both paths of each model at one loopback model server: the real codex and
gemini CLIs (``.tools`` bin dir on ``PATH``, loopback config homes) and the SDK runtimes (``OPENAI_BASE_URL`` /
``OPENAI_API_KEY``, ``GOOGLE_GEMINI_BASE_URL`` / ``GEMINI_API_KEY``). The model server's request log tells the
paths apart: the openai SDK and codex both ``POST /v1/responses`` (user agent ``AsyncOpenAI/Python`` with a
string ``input`` vs ``codex_exec`` with a list), google-genai 3.x uses ``/v1/models/...`` and the gemini CLI
``/v1beta/models/...``.

1. The same task on a CLI-model worker, once per runtime (per-dispatch ``runtimeMode`` and the worker's own
   ``runtimeMode``): ``get_run`` records the runtime that ran and the request log proves it.
2. A failing SDK path (HTTP 500; no API key in the server's environment): ``fallbackPolicy: on_error`` completes
   through the CLI and records ``fallbackFrom``; ``never`` fails with the class and makes no CLI request. Also
   the other direction (a CLI answered with HTTP 500 falls back to its SDK). Retries are off
   (``MCP_ORCHESTRATOR_RETRY_ATTEMPTS=1``): one attempt per runtime, so the request log is exact.
3. The API keys (distinctive ``sk-test-...`` values) never reach the data directory, the server's stderr, tool
   results or resources - also when the model server echoes a key back (in HTTP errors, an error event, a
   malformed body that gets quarantined).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent, TextResourceContents
from support.cli_harness import cli_binary, require_cli, token
from support.loopback import CODEX_KEY_VAR, loopback_env
from support.model_server import Api, Envelope, ModelServer, RecordedRequest, Turn
from support.records import full
from support.servers import REPO

from mcp_orchestrator.runtimes.cli import ADAPTERS

pytestmark = [pytest.mark.anyio, pytest.mark.clis]

AGENT = "policy-e2e"
CALL_TIMEOUT = 60.0
TEST_LIMIT = 50.0
SDK_OF = {"codex_cli": "openai_sdk", "gemini_cli": "google_sdk"}
API_OF: dict[str, Api] = {"codex_cli": "openai", "gemini_cli": "gemini"}
# gemini asks a router model first unless a model is named: name one (both of its runtimes use it).
MODEL_NAME = {"gemini_cli": "gemini-2.5-flash"}
# Distinctive keys: none of them may show up anywhere the orchestrator writes or answers.
OPENAI_KEY = f"sk-test-{secrets.token_hex(16)}"
GEMINI_KEY = f"sk-test-{secrets.token_hex(16)}"
CODEX_KEY = f"sk-test-{secrets.token_hex(16)}"
KEYS = {"OPENAI_API_KEY": OPENAI_KEY, "GEMINI_API_KEY": GEMINI_KEY, CODEX_KEY_VAR: CODEX_KEY}
_VENDOR_PREFIXES = ("OPENAI_", "GEMINI_", "GOOGLE_", "CODEX_", "ANTHROPIC_", "CLAUDE_")


# ---- which path served a request ------------------------------------------------------------------


def path_of(req: RecordedRequest) -> str:
    """``cli``, ``openai_sdk`` or ``google_sdk``: who sent ``req`` (``?...`` when it cannot be told)."""
    agent = req.headers.get("user-agent", "")
    body = req.body if isinstance(req.body, dict) else {}
    if req.path == "/v1/responses":
        if agent.startswith("codex_exec/") and isinstance(body.get("input"), list):
            return "cli"
        if "OpenAI/Python" in agent and isinstance(body.get("input"), str):
            return "openai_sdk"
    elif req.path.startswith("/v1beta/models/") and agent.startswith("GeminiCLI"):
        return "cli"
    elif req.path.startswith("/v1/models/") and agent.startswith("google-genai-sdk/"):
        return "google_sdk"
    return f"?{req.method} {req.path} {agent[:60]}"


def paths(server: ModelServer, tok: str, since: int = 0) -> list[str]:
    """The paths of the (non-auxiliary) requests carrying ``tok``, from the ``since``-th on."""
    return [path_of(r) for r in server.matching(tok)[since:]]


# ---- the server -------------------------------------------------------------------------------------


def _text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


@dataclass
class Server:
    """A connected client on a real stdio server; keeps every tool result and resource it saw."""

    client: Client
    root: Path
    stderr: Path
    seen: list[str] = field(default_factory=list)

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        """Call ``tool``; it must succeed. Returns its structured (wire, camelCase) result."""
        result = await self.client.call_tool(tool, full(tool, args))
        self.seen.append(_text(result))
        self.seen.append(json.dumps(result.structured_content))
        assert not result.is_error, f"{tool}({args}) failed: {_text(result)}"
        structured: dict[str, Any] | None = result.structured_content
        assert structured is not None
        return structured

    async def spawn(self, model: str, name: str, **extra: Any) -> dict[str, Any]:
        """A worker of ``model`` in the root's workdir."""
        args: dict[str, Any] = {"agentId": AGENT, "name": name, "model": model, "workdir": str(self.root / "work")}
        if model in MODEL_NAME:
            args["modelName"] = MODEL_NAME[model]
        return await self.call("spawn_worker", **args, **extra)

    async def dispatch(self, task: str, worker: str, **extra: Any) -> dict[str, Any]:
        """``dispatch_task`` to one worker, waiting until the run ends (or nearly the call timeout)."""
        run = await self.call(
            "dispatch_task", agentId=AGENT, task=task, workers=[worker], waitSeconds=CALL_TIMEOUT - 10, **extra
        )
        assert run["status"] in ("completed", "failed", "canceled"), run
        # get_run is what a caller follows up with: it must tell the same story.
        stored = await self.call("get_run", runId=run["runId"])
        assert stored == run
        await self.output(run["runId"])
        return run

    async def output(self, run_id: str) -> str:
        """The full output of step 0 (kept for the credential scan)."""
        result = await self.client.read_resource(f"runs://{run_id}/steps/0/output")
        (content,) = result.contents
        assert isinstance(content, TextResourceContents), content
        self.seen.append(content.text)
        return content.text

    async def worker(self, name: str) -> dict[str, Any]:
        """One worker as ``list_workers`` shows it."""
        found: list[dict[str, Any]] = [w for w in (await self.call("list_workers"))["workers"] if w["name"] == name]
        assert len(found) == 1, found
        return found[0]


@asynccontextmanager
async def serve(env: dict[str, str], root: Path, stderr: Path) -> AsyncIterator[Server]:
    """``python -m mcp_orchestrator -v serve`` over stdio with ``env``; its stderr (INFO logs) goes to ``stderr``."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "-v", "serve"], env=env, cwd=str(REPO)
    )
    with stderr.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=CALL_TIMEOUT) as client:
            yield Server(client, root, stderr)


def leaks(places: dict[str, str | bytes]) -> list[str]:
    """``where: VARIABLE`` for every place that holds one of the keys."""
    found = []
    for where, content in places.items():
        data = content.encode("utf-8", "replace") if isinstance(content, str) else content
        found += [f"{where}: {var}" for var, key in KEYS.items() if key.encode() in data]
    return found


def kept_redacted(data_home: Path, fragment: bytes) -> list[Path]:
    """Files of the data directory that hold ``fragment`` and a redaction mark."""
    files = (p for p in data_home.rglob("*") if p.is_file())
    return [p for p in files if fragment in (data := p.read_bytes()) and b"<redacted>" in data]


def assert_no_credentials(srv: Server, data_home: Path) -> None:
    """No key in any file of the data directory, the server's stderr, or anything the client was given."""
    files = sorted(p for p in data_home.rglob("*") if p.is_file())
    assert any(p.name == "output.log" or p.suffix == ".json" for p in files), "the scan found no run documents"
    places: dict[str, str | bytes] = {str(p.relative_to(data_home)): p.read_bytes() for p in files}
    places["server stderr"] = srv.stderr.read_bytes()
    places.update({f"tool result/resource {i}": text for i, text in enumerate(srv.seen)})
    assert not leaks(places)


# ---- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def policy_env(server_env: dict[str, str], model_server: ModelServer, tmp_path: Path) -> dict[str, str]:
    """The server's environment: fresh data directory and root, both paths of each model on the loopback server.

    The caller's own vendor variables are dropped; the CLIs are found on ``PATH`` (the ``.tools`` bin dir), as
    an installed server finds them.
    """
    env = {k: v for k, v in server_env.items() if not k.startswith(_VENDOR_PREFIXES)}
    env.update(loopback_env(model_server.url, tmp_path / "cli-homes"))
    home = tmp_path / "user-home"
    home.mkdir()
    env["HOME"] = str(home)
    env.update(KEYS)  # GEMINI_API_KEY serves the gemini CLI and google_sdk alike
    env["OPENAI_BASE_URL"] = model_server.openai_base_url
    # One attempt per runtime: these tests are about the runtime policy, not about retrying a transient failure.
    env["MCP_ORCHESTRATOR_RETRY_ATTEMPTS"] = "1"
    assert env["GOOGLE_GEMINI_BASE_URL"] == model_server.url
    dirs = []
    for model in ("codex_cli", "gemini_cli"):
        binary = cli_binary(model)
        if binary is not None and Path(binary).name == ADAPTERS[model].binary:
            dirs.append(str(Path(binary).parent))
        elif binary is not None:
            env[ADAPTERS[model].bin_env] = binary
    env["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), env.get("PATH", os.defpath)])
    return env


@pytest.fixture(params=["codex_cli", "gemini_cli"], ids=["codex", "gemini"])
def model(request: pytest.FixtureRequest) -> str:
    """Each CLI model with an SDK runtime (skipped when its binary is missing)."""
    require_cli(request.param)
    return str(request.param)


# ---- 1: the same task on each runtime -----------------------------------------------------------------


async def test_each_runtime_runs_and_is_recorded(
    model: str, model_server: ModelServer, policy_env: dict[str, str], root: Path, data_home: Path, tmp_path: Path
) -> None:
    sdk, api = SDK_OF[model], API_OF[model]
    tok = token()
    task = f"summarise the release notes {tok}"
    # (worker, per-dispatch runtimeMode, the runtime that must run): both ways of choosing, both directions.
    cases = [("w-nat", None, "cli"), ("w-nat", sdk, sdk), ("w-sdk", None, sdk), ("w-sdk", "cli", "cli")]

    with anyio.fail_after(TEST_LIMIT):
        async with serve(policy_env, root, tmp_path / "server.stderr") as srv:
            natural = await srv.spawn(model, "w-nat")
            assert natural["runtimeMode"] == "cli"
            chosen = await srv.spawn(model, "w-sdk", runtimeMode=sdk)
            assert chosen["runtimeMode"] == sdk
            assert (await srv.worker("w-sdk"))["runtimeStatus"] == "ready"

            ran: dict[str, str] = {}
            for i, (worker, override, expected) in enumerate(cases):
                answer = f"answer {i} via {expected} {tok}"
                model_server.script(Turn.answer(answer), api=api, match=tok)
                before = len(model_server.matching(tok))
                run = await srv.dispatch(task, worker, **({"runtimeMode": override} if override else {}))
                assert run["status"] == "completed", run
                assert run["task"] == task
                (step,) = run["steps"]
                assert step["workerName"] == worker
                assert step["runtimeMode"] == expected, (worker, override, step)
                assert step["fallbackFrom"] is None
                assert step["output"] == answer
                # The request log: exactly this path answered, with this run's scripted turn.
                assert paths(model_server, tok, before) == [expected], (worker, override)
                assert model_server.pending(tok) == 0
                ran[run["runId"]] = expected

            # list_worker_runs lists each worker's runs (summaries); get_run has the runtime of each.
            for worker in ("w-nat", "w-sdk"):
                listed = await srv.call("list_worker_runs", workerName=worker, agentId=AGENT)
                ids = [r["runId"] for r in listed["runs"]]
                assert len(ids) == 2
                assert all(r["status"] == "completed" and r["workers"] == [worker] for r in listed["runs"])
                for run_id in ids:
                    stored = await srv.call("get_run", runId=run_id)
                    assert stored["steps"][0]["runtimeMode"] == ran[run_id]
            # The override was for one dispatch: the workers keep their own runtime.
            assert (await srv.worker("w-nat"))["runtimeMode"] == "cli"
            assert (await srv.worker("w-sdk"))["runtimeMode"] == sdk

    assert sorted(paths(model_server, tok)) == sorted(e for _, _, e in cases)
    assert_no_credentials(srv, data_home)


# ---- 2: fallback when one path fails --------------------------------------------------------------------

FAILURES = [
    pytest.param("codex_cli", "openai_sdk", "http_500", "unavailable", "openai: HTTP 500 ", id="openai_sdk-500"),
    pytest.param("codex_cli", "openai_sdk", "no_key", "auth", "openai: no API key", id="openai_sdk-no-key"),
    pytest.param("gemini_cli", "google_sdk", "http_500", "unavailable", "gemini: HTTP 500 ", id="google_sdk-500"),
    # The other direction: a failing CLI falls back to its model's SDK (its key is in the server's environment).
    pytest.param("codex_cli", "cli", "http_500", "unavailable", "codex: ", id="codex_cli-500"),
    pytest.param("gemini_cli", "cli", "http_500", "unavailable", "gemini: ", id="gemini_cli-500"),
]


@pytest.mark.parametrize(("model", "failing", "cause", "failure_class", "message"), FAILURES)
async def test_failing_path_falls_back_or_fails(
    model: str,
    failing: str,
    cause: str,
    failure_class: str,
    message: str,
    model_server: ModelServer,
    policy_env: dict[str, str],
    root: Path,
    data_home: Path,
    tmp_path: Path,
) -> None:
    """``on_error``: the other runtime completes the step and ``fallbackFrom`` says why; ``never``: the step
    fails with the class and the other runtime is never asked.

    The on_error worker chose the failing runtime at spawn; the never worker is a worker of the model's
    natural runtime whose dispatch asks for the failing one.
    """
    require_cli(model)
    api = API_OF[model]
    other = SDK_OF[model] if failing == "cli" else "cli"
    env = dict(policy_env)
    if cause == "no_key":
        env.pop("OPENAI_API_KEY")
    on, never = token(), token()
    rescued = f"rescued by {other} {on}"
    if cause == "http_500":
        model_server.script(Turn.error(500, "upstream exploded"), Turn.answer(rescued), api=api, match=on)
        model_server.script(Turn.error(500, "upstream exploded"), api=api, match=never)
    else:
        model_server.script(Turn.answer(rescued), api=api, match=on)

    with anyio.fail_after(TEST_LIMIT):
        async with serve(env, root, tmp_path / "server.stderr") as srv:
            # Reviewers: a CLI falls back to an SDK only for read-only roles (an SDK cannot change files).
            await srv.spawn(model, "w-on", runtimeMode=failing, fallbackPolicy="on_error", role="reviewer")
            await srv.spawn(model, "w-never", fallbackPolicy="never", role="reviewer")
            if cause == "no_key":
                (info,) = [r for r in (await srv.call("runtimes"))["runtimes"] if r["mode"] == failing]
                assert info["status"] == "unavailable"
                assert "OPENAI_API_KEY" in info["detail"]
                assert (await srv.worker("w-on"))["runtimeStatus"] == "unavailable"

            run = await srv.dispatch(f"fix the flaky test {on}", "w-on")
            assert run["status"] == "completed", run
            assert run["error"] is None
            (step,) = run["steps"]
            assert step["status"] == "completed"
            assert step["runtimeMode"] == other
            assert step["output"] == rescued
            fell = step["fallbackFrom"]
            assert fell is not None
            assert fell["runtimeMode"] == failing
            assert fell["failureClass"] == failure_class
            assert fell["message"].startswith(message), fell

            run = await srv.dispatch(f"fix the flaky test {never}", "w-never", runtimeMode=failing)
            assert run["status"] == "failed", run
            assert run["error"]["class"] == failure_class
            (step,) = run["steps"]
            assert step["status"] == "failed"
            assert step["failureClass"] == failure_class
            assert step["runtimeMode"] == failing
            assert step["fallbackFrom"] is None
            assert step["output"].startswith(f"{failure_class}: {message}"), step["output"]

    tried = [failing] if cause == "http_500" else []  # without a key the SDK sends nothing
    assert paths(model_server, on) == [*tried, other]
    assert paths(model_server, never) == tried, f"policy never: {other} must not be asked"
    assert model_server.pending(on) == model_server.pending(never) == 0
    assert_no_credentials(srv, data_home)


# ---- 3: credentials echoed back by the model server -------------------------------------------------------


def _error_event(message: str) -> Envelope:
    """A 200 Responses stream whose only event is an ``error`` object."""
    event = {"type": "error", "code": "invalid_api_key", "message": message, "param": None, "sequence_number": 0}
    body = f"event: error\ndata: {json.dumps(event)}\n\n".encode()
    return Envelope(body=body, content_type="text/event-stream", framing="chunked")


async def test_keys_echoed_by_the_api_never_reach_store_logs_or_results(
    model_server: ModelServer, policy_env: dict[str, str], root: Path, data_home: Path, tmp_path: Path
) -> None:
    """An API that quotes the key it was sent back (HTTP 401, an error event inside a 200 stream, a body that is
    not an event stream, a 429 that makes the step fall back): messages, outputs, quarantined responses and
    fallback records stay clean, and so do the server's logs."""
    require_cli("codex_cli")
    names = ("openai-401", "google-401", "openai-event", "google-garbage", "openai-fallback")
    toks = {name: token() for name in names}
    model_server.script(
        Turn.error(401, f"Incorrect API key provided: {OPENAI_KEY}"), api="openai", match=toks["openai-401"]
    )
    model_server.script(Turn.error(401, f"API key {GEMINI_KEY} not valid"), api="gemini", match=toks["google-401"])
    model_server.script(
        Turn.raw(_error_event(f"Incorrect API key provided: {OPENAI_KEY}")), api="openai", match=toks["openai-event"]
    )
    garbage = Envelope(body=json.dumps({"echo": f"key={GEMINI_KEY}"}).encode(), content_type="application/json")
    model_server.script(Turn.raw(garbage), api="gemini", match=toks["google-garbage"])
    model_server.script(
        Turn.error(429, f"rate limited for key {OPENAI_KEY}"),
        Turn.answer(f"done {toks['openai-fallback']}"),
        api="openai",
        match=toks["openai-fallback"],
    )

    # The model server rejects keys per request; a real API's 401 would mark the endpoint misconfigured (the gateway
    # then fails fast without asking it again), so turn that off to reach every scripted answer.
    gateway = tmp_path / "gateway.json"
    gateway.write_text(json.dumps({"breaker": {"authFailFast": False}}))
    env = {**policy_env, "MCP_ORCHESTRATOR_GATEWAY_CONFIG": str(gateway)}
    with anyio.fail_after(TEST_LIMIT):
        async with serve(env, root, tmp_path / "server.stderr") as srv:
            await srv.spawn("codex_cli", "w-openai", runtimeMode="openai_sdk", fallbackPolicy="never")
            await srv.spawn("gemini_cli", "w-google", runtimeMode="google_sdk", fallbackPolicy="never")
            await srv.spawn("codex_cli", "w-fallback", runtimeMode="openai_sdk")

            for name, worker in (("openai-401", "w-openai"), ("google-401", "w-google"), ("openai-event", "w-openai")):
                run = await srv.dispatch(f"use the key {toks[name]}", worker)
                assert run["status"] == "failed", run
                assert run["error"]["class"] == "auth", (name, run["error"])
                assert "<redacted>" in run["steps"][0]["output"], (name, run["steps"][0]["output"])

            # Not an event stream: bad_output, and the raw response is quarantined beside the step's output.
            run = await srv.dispatch(f"answer oddly {toks['google-garbage']}", "w-google")
            assert run["status"] == "failed", run
            assert run["error"]["class"] == "bad_output", run["error"]
            assert "raw response kept in" in run["error"]["message"], run["error"]
            assert kept_redacted(data_home, b'"echo"'), "the raw response should be kept, with the key redacted"

            run = await srv.dispatch(f"retry elsewhere {toks['openai-fallback']}", "w-fallback")
            assert run["status"] == "completed", run
            (step,) = run["steps"]
            assert step["runtimeMode"] == "cli"
            assert step["fallbackFrom"]["failureClass"] == "rate_limited"
            assert "<redacted>" in step["fallbackFrom"]["message"], step["fallbackFrom"]

            await srv.call("runtimes")
            await srv.call("list_workers")
            await srv.call("list_worker_runs", agentId=AGENT)

    assert paths(model_server, toks["openai-fallback"]) == ["openai_sdk", "cli"]
    for tok in toks.values():
        assert model_server.pending(tok) == 0
    assert_no_credentials(srv, data_home)
