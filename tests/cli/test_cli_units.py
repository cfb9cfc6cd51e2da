"""Pure parts of the CLI runtime: templates, environment allowlist, failure taxonomy, capabilities."""

from __future__ import annotations

import json
import time

import pytest
from support.cli_harness import cli_binary

from mcp_orchestrator.runtimes.cli import ADAPTERS, adapter_status, cli_capabilities, is_read_only
from mcp_orchestrator.runtimes.cli.env import worker_env
from mcp_orchestrator.runtimes.cli.failures import classify
from mcp_orchestrator.runtimes.cli.parsers import make_parser
from mcp_orchestrator.runtimes.cli.templates import MAX_ARG_PROMPT_BYTES, build_invocation

CLAUDE_BASE = ("-p", "--output-format", "stream-json", "--verbose")


@pytest.mark.parametrize(
    ("model", "role", "expected"),
    [
        ("codex_cli", "writer", ["exec", "--json", "--skip-git-repo-check", "-s", "workspace-write"]),
        ("codex_cli", "reviewer", ["exec", "--json", "--skip-git-repo-check", "-s", "read-only"]),
        ("gemini_cli", "writer", ["-o", "stream-json", "--skip-trust", "--approval-mode", "yolo"]),
        ("gemini_cli", "Reviewer", ["-o", "stream-json", "--skip-trust", "--approval-mode", "default"]),
        (
            "claude_cli",
            "writer",
            [*CLAUDE_BASE, "--permission-mode", "acceptEdits", "--allowedTools", "Bash"],
        ),
        ("claude_cli", "reviewer", [*CLAUDE_BASE, "--permission-mode", "plan"]),
    ],
)
def test_templates_by_role(model: str, role: str, expected: list[str]) -> None:
    inv = build_invocation(model, "/bin/x", "-rm everything", role=role)
    assert inv.flags == expected
    assert inv.argv[0] == "/bin/x"
    assert inv.stdin is None
    # A prompt that starts with a dash can never be read as a flag.
    assert inv.argv[-2:] in (["--", "-rm everything"],) or inv.argv[-1] == "--prompt=-rm everything"
    assert inv.read_only is is_read_only(role)


def test_templates_resume_model_name_and_stdin() -> None:
    codex = build_invocation("codex_cli", "codex", "go", role="writer", session_id="T1", model_name="gpt-x")
    assert codex.argv[-5:] == ["-m", "gpt-x", "resume", "T1", "--", "go"][-5:]
    assert codex.resumed
    gemini = build_invocation("gemini_cli", "gemini", "go", role="writer", session_id="S1")
    assert gemini.flags[-2:] == ["--resume", "S1"]
    claude = build_invocation("claude_cli", "claude", "go", role="writer", session_id="S2", model_name="m")
    assert claude.flags[-4:] == ["--model", "m", "--resume", "S2"]
    long = "x" * (MAX_ARG_PROMPT_BYTES + 1)
    for model in ADAPTERS:
        inv = build_invocation(model, "bin", long, role="writer")
        assert inv.stdin == long.encode()
        assert long not in inv.argv
    assert build_invocation("codex_cli", "bin", long, role="writer").argv[-1] == "-"
    with pytest.raises(ValueError, match="no CLI adapter"):
        build_invocation("mock", "bin", "go", role="writer")


def test_worker_env_is_an_allowlist() -> None:
    parent = {
        "PATH": "/bin",
        "HOME": "/h",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TMPDIR": "/t",
        "HTTPS_PROXY": "http://proxy",
        "no_proxy": "localhost",
        "OPENAI_API_KEY": "o",
        "CODEX_HOME": "/c",
        "GEMINI_API_KEY": "g",
        "GOOGLE_CLOUD_PROJECT": "p",
        "ANTHROPIC_API_KEY": "a",
        "CLAUDE_CONFIG_DIR": "/cl",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "MY_SECRET_TOKEN": "s",
        "EXTRA_ONE": "1",
        "MCP_ORCHESTRATOR_CODEX_BIN": "/x",
        "MCP_ORCHESTRATOR_HOME": "/y",
    }
    base = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "HTTPS_PROXY", "no_proxy"}
    codex = worker_env("codex_cli", parent, ["EXTRA_ONE", "MCP_ORCHESTRATOR_HOME"])
    assert set(codex) == base | {"OPENAI_API_KEY", "CODEX_HOME", "EXTRA_ONE"}
    gemini = worker_env("gemini_cli", parent)
    assert set(gemini) == base | {"GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GEMINI_CLI_NO_RELAUNCH"}
    assert gemini["GEMINI_CLI_NO_RELAUNCH"] == "true"
    claude = worker_env("claude_cli", parent)
    assert set(claude) == base | {"ANTHROPIC_API_KEY", "CLAUDE_CONFIG_DIR", "DISABLE_AUTOUPDATER"}


def _state(model: str, *lines: str) -> object:
    parser = make_parser(model)
    for line in lines:
        parser.feed(line.encode())
    return parser.state


def _failed(message: str) -> str:
    return json.dumps({"type": "turn.failed", "error": {"message": message}})


def _gemini_error(message: str) -> str:
    return json.dumps({"type": "result", "status": "error", "error": {"message": message}})


def _claude_result(status: int | None, text: str) -> str:
    return json.dumps({"type": "result", "is_error": True, "api_error_status": status, "result": text})


CLAUDE_SERVER_ERROR = json.dumps({"type": "assistant", "error": "server_error", "message": {"content": []}})


@pytest.mark.parametrize(
    ("model", "exit_code", "lines", "stderr", "expected"),
    [
        ("codex_cli", 0, ['{"type":"turn.completed","usage":{}}'], b"", None),
        ("codex_cli", 1, [_failed("unexpected status 401 Unauthorized: no")], b"", "auth"),
        ("codex_cli", 1, ['{"type":"error","message":"exceeded retry limit, last status: 429 Too Many"}'], b"",
         "rate_limited"),
        ("codex_cli", 1, [_failed("Connection failed: error sending request")], b"", "unavailable"),
        ("codex_cli", 1, [_failed("We're currently experiencing high demand")], b"", "unavailable"),
        ("codex_cli", 1, [], b"error: unexpected argument '--bogus' found", "process_error"),
        ("gemini_cli", 173, [_gemini_error("[API Error: slow down]")], b"", "rate_limited"),
        ("gemini_cli", 145, [_gemini_error("[API Error: who are you]")], b"", "auth"),
        ("gemini_cli", 244, [_gemini_error('[API Error: {"error":{"code":500}}]')], b"", "unavailable"),
        ("gemini_cli", 41, [], b"Please set an Auth method", "auth"),
        ("gemini_cli", 1, [_gemini_error("[API Error: fetch failed sending request]")], b"", "unavailable"),
        ("gemini_cli", 0, ['{"type":"init","session_id":"s"}'], b"", "bad_output"),
        ("claude_cli", 1, [_claude_result(401, "Failed to authenticate")], b"", "auth"),
        ("claude_cli", 1, [_claude_result(429, "Request rejected (429)")], b"", "rate_limited"),
        ("claude_cli", 1, [CLAUDE_SERVER_ERROR, _claude_result(None, "ECONNREFUSED")], b"", "unavailable"),
        ("claude_cli", 0, ["not json at all"], b"", "bad_output"),
        ("claude_cli", -9, [], b"", "process_error"),
    ],
)  # fmt: skip
def test_failure_taxonomy(model: str, exit_code: int, lines: list[str], stderr: bytes, expected: str | None) -> None:
    failure = classify(model, exit_code, _state(model, *lines), stderr)  # type: ignore[arg-type]
    assert (failure.failure_class if failure else None) == expected
    if failure is not None:
        assert failure.exit_code == exit_code


def test_capabilities_contract() -> None:
    for model, adapter in ADAPTERS.items():
        caps = cli_capabilities(model)
        assert caps["jsonl_native"] is True
        assert caps["supports_resume"] is True
        assert caps["transport"] == "subprocess-jsonl"
        assert caps["sandbox_modes"] == list(adapter.sandbox_modes)
        assert isinstance(caps["schema_strict"], bool)
    assert cli_capabilities("codex_cli")["schema_strict"] is True
    with pytest.raises(KeyError, match="no CLI adapter"):
        cli_capabilities("mock")


@pytest.mark.clis
@pytest.mark.parametrize("model", list(ADAPTERS))
def test_adapter_status_of_installed_cli(model: str) -> None:
    binary = cli_binary(model)
    if binary is None:
        pytest.skip(f"{ADAPTERS[model].binary} is not installed: run scripts/install-clis")
    environ = {"PATH": "/usr/bin:/bin", ADAPTERS[model].bin_env: binary}
    status = adapter_status(model, environ)
    assert status == {"status": "ready", "binary": binary, "version": ADAPTERS[model].pinned_version, "detail": ""}
    started = time.monotonic()
    assert adapter_status(model, environ) == status
    assert time.monotonic() - started < 0.05, "the version lookup is cached"
