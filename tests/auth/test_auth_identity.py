"""Issue #12, acceptance 2, 3 and 6 with static tokens: the server bound off loopback, real SDK clients over
Streamable HTTP and SSE, raw HTTP for what a client library would hide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from auth_support import HEADERS, INIT, Tokens, authed_client, issue_tokens, serving, text_of
from mcp.shared.auth import ProtectedResourceMetadata
from support.records import full
from support.servers import REPO

from mcp_orchestrator.observability.logcheck import validate_log

pytestmark = pytest.mark.anyio


SEEN: list[str] = []  # every tool result text of this module's calls, scanned for token values


async def _ok(client: Any, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, full(tool, args))
    SEEN.append(text_of(result))
    assert not result.is_error, f"{tool}({args}) failed: {text_of(result)}"
    out: dict[str, Any] = result.structured_content
    return out


async def _refused(client: Any, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    SEEN.append(text_of(result))
    assert result.is_error, f"{tool}({args}) should have been refused: {result.structured_content}"
    return text_of(result)


def _revoke(env: dict[str, str], token_id: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "mcp_orchestrator", "token", "revoke", token_id],
        env=env,
        cwd=str(REPO),
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_without_a_valid_token_every_request_gets_401(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    tokens = issue_tokens(data_home)
    async with serving(server_env, tmp_path / "server.log") as server, httpx2.AsyncClient(timeout=10) as http:
        base = f"http://127.0.0.1:{server.port}"
        for token in (None, "wrong", "mcpo_" + "x" * 43):
            headers = {**HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
            r = await http.post(f"{base}/mcp", json=INIT, headers=headers)
            assert r.status_code == 401, (token, r.status_code, r.text)
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith("Bearer ")
            assert f'resource_metadata="http://0.0.0.0:{server.port}/.well-known/oauth-protected-resource/mcp"' in (
                challenge
            )
        # The protected-resource metadata (RFC 9728) is served without a token, at both well-known paths.
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            r = await http.get(base + path)
            assert r.status_code == 200, path
            meta = ProtectedResourceMetadata.model_validate(r.json())
            assert str(meta.resource) == f"http://0.0.0.0:{server.port}/mcp"
            assert meta.bearer_methods_supported == ["header"]
        # A good token opens a session; once revoked, the same token is refused on the next request.
        auth = {**HEADERS, "authorization": f"Bearer {tokens['bob']}"}
        assert (await http.post(f"{base}/mcp", json=INIT, headers=auth)).status_code == 200
        _revoke(server_env, tokens.ids["bob"])
        r = await http.post(f"{base}/mcp", json=INIT, headers=auth)
        assert r.status_code == 401, r.text


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_token_acts_and_reads_only_as_its_agents(
    transport: str, server_env: dict[str, str], data_home: Path, root: Path, tmp_path: Path
) -> None:
    tokens = issue_tokens(data_home)
    async with serving(server_env, tmp_path / "server.log", transport=transport) as server:
        url = server.url
        async with (
            authed_client(url, tokens["alice"], transport) as alice,
            authed_client(url, tokens["bob"], transport) as bob,
        ):
            await _ok(alice, "spawn_worker", agentId="alice", name="a-w", model="mock")
            await _ok(bob, "spawn_worker", agentId="bob", name="b-w", model="mock")
            # Acting as another agent is refused, and the refusal lists the agentIds this credential may use.
            for tool, args in (
                ("spawn_worker", {"name": "x", "model": "mock"}),
                ("dispatch_task", {"task": "t", "workers": ["a-w"]}),
                ("stop_worker", {"name": "a-w"}),
                ("panic", {"reason": "no"}),
            ):
                text = await _refused(bob, tool, agentId="alice", **args)
                assert "forbidden" in text and "'alice'" in text and "bob" in text, text
            run = await _ok(alice, "dispatch_task", agentId="alice", task="alice's secret task", workers=["a-w"])
            assert run["status"] == "completed", run
            run_id = run["runId"]
            mine = await _ok(bob, "dispatch_task", agentId="bob", task="bob's task", workers=["b-w"])
            # bob cannot cancel alice's run, even naming himself.
            text = await _refused(bob, "cancel_run", agentId="alice", runId=run_id)
            assert "forbidden" in text
            assert "belongs to agent 'alice'" in await _refused(bob, "cancel_run", agentId="bob", runId=run_id)
            # Reads: alice's run is invisible to bob as a tool, a resource and a replay.
            assert "No run named" in await _refused(bob, "get_run", runId=run_id)
            listed = await _ok(bob, "list_worker_runs")
            assert [r["runId"] for r in listed["runs"]] == [mine["runId"]]
            assert "forbidden" in await _refused(bob, "list_worker_runs", agentId="alice")
            assert {w["name"] for w in (await _ok(bob, "list_workers"))["workers"]} == {"b-w"}
            for uri in (f"runs://{run_id}", f"runs://{run_id}/summary", f"replays://{run_id}"):
                with pytest.raises(Exception, match="No run named"):
                    await bob.read_resource(uri)
            assert "operator" in await _refused(bob, "diag")
            # The owner reads it all.
            assert (await _ok(alice, "get_run", runId=run_id))["runId"] == run_id
            body = (await alice.read_resource(f"runs://{run_id}")).contents[0]
            assert json.loads(body.text)["runId"] == run_id  # type: ignore[union-attr]
        async with authed_client(url, tokens["op"], transport) as op:
            both = await _ok(op, "list_worker_runs")
            assert {r["agentId"] for r in both["runs"]} == {"alice", "bob"}
            assert (await _ok(op, "get_run", runId=run_id))["agentId"] == "alice"
            await op.read_resource(f"replays://{run_id}")
            await _ok(op, "diag")
            # An operator reads everything but acts as no agent.
            assert "forbidden" in await _refused(op, "cancel_run", agentId="alice", runId=run_id)
        async with authed_client(url, tokens["reader"], transport) as reader:
            assert (await _ok(reader, "get_run", runId=run_id))["agentId"] == "alice"
            text = await _refused(reader, "dispatch_task", agentId="alice", task="t", workers=["a-w"])
            assert "runs:write" in text
    # Every authenticated mutating call is audited with its principal, refused ones included.
    lines = [json.loads(x) for x in (data_home / "logs" / "events.jsonl").read_text().splitlines()]
    audit = [x for x in lines if x["event"] == "audit"]
    assert {(x["principal"], x["tool"], x["status"]) for x in audit} >= {
        (tokens.ids["alice"], "spawn_worker", "ok"),
        (tokens.ids["alice"], "dispatch_task", "ok"),
        (tokens.ids["bob"], "spawn_worker", "refused"),
        (tokens.ids["bob"], "cancel_run", "refused"),
        (tokens.ids["reader"], "dispatch_task", "refused"),
    }
    assert any(x["runId"] == run_id and x["tool"] == "dispatch_task" for x in audit)
    report, diagnostics = validate_log(data_home / "logs" / "events.jsonl")
    assert report.ok, diagnostics
    _assert_no_token_anywhere(tokens, data_home, tmp_path)


def _assert_no_token_anywhere(tokens: Tokens, *dirs: Path) -> None:
    """Acceptance 6: no token value is in the data dir, logs, replays, the server's own log or a tool result."""
    values = [v.encode() for v in tokens.values.values()]
    assert SEEN and not [t for t in SEEN for v in tokens.values.values() if v in t]
    for top in dirs:
        for path in top.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for value in values:
                    assert value not in data, f"a token value is stored in {path}"


async def test_the_token_commands_never_print_or_store_a_hash_reader_could_use(
    server_env: dict[str, str], data_home: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mcp_orchestrator", "token", *args],
            env=server_env,
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    added = cli("add", "--agent", "carol", "--scope", "runs:read", "--label", "ci")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("mcpo_") and len(token) > 40
    stored = (data_home / "tokens.json").read_text()
    assert token not in stored
    listed = json.loads(cli("list").stdout)
    assert [(t["agents"], t["scopes"], t["status"]) for t in listed] == [(["carol"], ["runs:read"], "active")]
    assert "sha256" not in listed[0]
    assert cli("revoke", listed[0]["id"]).returncode == 0
    assert json.loads(cli("list").stdout)[0]["status"] == "revoked"
    missing = cli("revoke", "tok_nope")
    assert missing.returncode == 2 and "token list" in missing.stderr
    bad = cli("add", "--agent", "bad agent!")
    assert bad.returncode == 2 and "agentId" in bad.stderr


async def test_off_loopback_without_credentials_the_server_refuses_to_start(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    for transport in ("streamable-http", "sse"):
        for extra in ([], ["--no-auth"]):
            cmd = [sys.executable, "-m", "mcp_orchestrator", "serve", "--transport", transport, "--host", "0.0.0.0"]
            with anyio.fail_after(60):
                proc = await anyio.run_process([*cmd, *extra], env=server_env, cwd=str(REPO), check=False)
            err = proc.stderr.decode()
            assert proc.returncode == 2, err
            if not extra:
                assert "MCP_ORCHESTRATOR_TOKENS" in err and "--auth-issuer" in err and "token add" in err, err
            else:
                assert "--no-auth is only allowed on loopback" in err
