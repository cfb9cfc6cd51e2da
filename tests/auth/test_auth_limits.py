"""Issue #12, acceptance 4: off loopback, Host and Origin are still checked (421 / 403), an oversized body gets
413, and per credential a session cap and a dispatch rate limit answer with clear errors, losing nothing
already accepted."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from auth_support import HEADERS, INIT, authed_client, issue_tokens, serving, text_of

pytestmark = pytest.mark.anyio


async def test_host_origin_body_and_session_limits(server_env: dict[str, str], data_home: Path, tmp_path: Path) -> None:
    tokens = issue_tokens(data_home)
    args = ("--max-body-bytes", "4096", "--max-sessions", "2", "--allowed-host", "orch.example")
    async with serving(server_env, tmp_path / "server.log", *args) as server, httpx2.AsyncClient(timeout=10) as http:
        url = f"http://127.0.0.1:{server.port}/mcp"
        auth = {**HEADERS, "authorization": f"Bearer {tokens['alice']}"}
        foreign_host = await http.post(url, json=INIT, headers={**auth, "host": "evil.example"})
        assert foreign_host.status_code == 421
        foreign_origin = await http.post(url, json=INIT, headers={**auth, "origin": "http://evil.example"})
        assert foreign_origin.status_code == 403
        allowed = await http.post(url, json=INIT, headers={**auth, "host": "orch.example"})
        assert allowed.status_code == 200, allowed.text
        big = {**INIT, "params": {**INIT["params"], "padding": "x" * 8000}}  # type: ignore[dict-item]
        too_big = await http.post(url, content=json.dumps(big), headers=auth)
        assert too_big.status_code == 413
        # alice already holds one session (the allowed request above); one more fits, the third is refused.
        second = await http.post(url, json=INIT, headers=auth)
        assert second.status_code == 200
        third = await http.post(url, json=INIT, headers=auth)
        assert third.status_code == 429, third.text
        assert third.headers["retry-after"] == "5" and "open sessions" in third.json()["error_description"]
        # Another credential is not affected; closing a session frees a place.
        bob = {**HEADERS, "authorization": f"Bearer {tokens['bob']}"}
        assert (await http.post(url, json=INIT, headers=bob)).status_code == 200
        closed = await http.delete(url, headers={**auth, "mcp-session-id": second.headers["mcp-session-id"]})
        assert closed.status_code == 200
        assert (await http.post(url, json=INIT, headers=auth)).status_code == 200


async def test_the_dispatch_rate_limit_refuses_with_retry_after_and_keeps_accepted_runs(
    server_env: dict[str, str], data_home: Path, tmp_path: Path
) -> None:
    tokens = issue_tokens(data_home)
    async with serving(server_env, tmp_path / "server.log", "--dispatch-rate", "2/60") as server:
        async with authed_client(server.url, tokens["alice"]) as alice:
            spawned = await alice.call_tool("spawn_worker", {"agentId": "alice", "name": "w", "model": "mock"})
            assert not spawned.is_error
            accepted = []
            for i in range(2):
                r = await alice.call_tool("dispatch_task", {"agentId": "alice", "task": f"t{i}", "workers": ["w"]})
                assert not r.is_error, text_of(r)
                accepted.append(r.structured_content["runId"])  # type: ignore[index]
            third = await alice.call_tool("dispatch_task", {"agentId": "alice", "task": "t2", "workers": ["w"]})
            assert third.is_error
            text = text_of(third)
            assert "rate_limited:" in text and "Nothing was accepted. Retry after" in text, text
            listed = await alice.call_tool("list_worker_runs", {})
            runs = listed.structured_content["runs"]  # type: ignore[index]
            assert sorted(r["runId"] for r in runs) == sorted(accepted)
            assert {r["status"] for r in runs} == {"completed"}
        async with authed_client(server.url, tokens["bob"]) as bob:  # the limit is per credential
            await bob.call_tool("spawn_worker", {"agentId": "bob", "name": "wb", "model": "mock"})
            r = await bob.call_tool("dispatch_task", {"agentId": "bob", "task": "b", "workers": ["wb"]})
            assert not r.is_error, text_of(r)
