"""Issue #12, acceptance 2 and 3 with OAuth 2.1 JWTs: a test issuer on 127.0.0.1 publishes its JWKS; the server
validates signature, issuer, audience and expiry, refetches the JWKS on an unknown key id, and maps the
``agent_ids`` claim to the agents the caller may act as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from auth_support import HEADERS, INIT, authed_client, running_issuer, serving, text_of

pytestmark = pytest.mark.anyio

AUDIENCE = "https://orchestrator.test/mcp"


async def test_jwts_are_checked_against_the_issuers_keys(server_env: dict[str, str], tmp_path: Path) -> None:
    with running_issuer() as issuer:
        k1 = issuer.new_key("k1")
        stranger = issuer.new_key("k-stranger", publish=False)
        args = ("--auth-issuer", issuer.url, "--auth-audience", AUDIENCE)
        async with serving(server_env, tmp_path / "server.log", *args) as server:
            base = f"http://127.0.0.1:{server.port}"

            def good(**claims: Any) -> str:
                return issuer.token(k1, AUDIENCE, agent_ids=["alice"], scope="runs:read runs:write", **claims)

            refused = {
                "expired": issuer.token(k1, AUDIENCE, ttl=-120, agent_ids=["alice"], scope="runs:read"),
                "wrong audience": issuer.token(k1, "https://other.test/mcp", agent_ids=["alice"]),
                "bad signature": issuer.token(stranger, AUDIENCE, kid="k1", agent_ids=["alice"]),
                "unknown kid": issuer.token(stranger, AUDIENCE, agent_ids=["alice"]),
                "not a JWT": "abc.def.ghi",
            }
            async with httpx2.AsyncClient(timeout=10) as http:
                for why, token in refused.items():
                    bearer = {**HEADERS, "authorization": f"Bearer {token}"}
                    r = await http.post(f"{base}/mcp", json=INIT, headers=bearer)
                    assert r.status_code == 401, (why, r.status_code)
                    assert "resource_metadata=" in r.headers["www-authenticate"], why
                ok = await http.post(f"{base}/mcp", json=INIT, headers={**HEADERS, "authorization": f"Bearer {good()}"})
                assert ok.status_code == 200, ok.text

            # The agent comes from the token: alice may act as alice and nobody else.
            async with authed_client(server.url, good()) as alice:
                spawned = await alice.call_tool("spawn_worker", {"agentId": "alice", "name": "w1", "model": "mock"})
                assert not spawned.is_error, text_of(spawned)
                other = await alice.call_tool("spawn_worker", {"agentId": "mallory", "name": "w2", "model": "mock"})
                assert other.is_error and "may not act as agent 'mallory'" in text_of(other)

            # Key rotation: a token signed with a key published after start-up is accepted after one refetch.
            fetches = issuer.jwks_fetches
            k2 = issuer.new_key("k2")
            rotated = issuer.token(k2, AUDIENCE, agent_ids=["alice"], scope="runs:read")
            async with authed_client(server.url, rotated) as client:
                listed = await client.call_tool("list_workers", {})
                assert not listed.is_error, text_of(listed)
                assert [w["name"] for w in listed.structured_content["workers"]] == ["w1"]  # type: ignore[index]
            assert issuer.jwks_fetches == fetches + 1
