"""``mcp-orchestrator token add|list|revoke`` and the ``serve`` options that expose the server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server.auth.exposure import Exposure, default_tokens_path
from mcp_orchestrator.server.auth.tokens import TokenStore, describe

__all__ = ["exposure_from_args", "token_command"]


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(Path(args.file).expanduser() if args.file else default_tokens_path(Settings.from_env().home))


def token_command(args: argparse.Namespace) -> int:
    """Run one ``token`` subcommand; the token value is printed once, on stdout, and never stored."""
    store = _store(args)
    if args.token_command == "add":
        token, entry = store.add(args.agent or [], args.scope or ["runs:read", "runs:write"], args.label or "")
        print(token)
        print(
            f"token {entry.id} for {', '.join(entry.agents) or '(no agent)'} with {', '.join(entry.scopes)} "
            f"added to {store.path}; it is shown only now. Serve with MCP_ORCHESTRATOR_TOKENS={store.path}.",
            file=sys.stderr,
        )
    elif args.token_command == "list":
        print(json.dumps([describe(t) for t in store.load().tokens], indent=2))
    else:
        entry = store.revoke(args.token_id)
        print(f"token {entry.id} revoked at {entry.revoked_at:%Y-%m-%d %H:%M:%S}Z", file=sys.stderr)
    return 0


def exposure_from_args(args: argparse.Namespace, settings: Settings) -> Exposure:
    """The ``serve`` command's HTTP options as an ``Exposure``."""
    return Exposure.from_options(
        transport=args.transport,
        host=args.host,
        port=args.port,
        home=settings.home,
        tokens=args.tokens,
        no_auth=args.no_auth,
        issuer=args.auth_issuer,
        audience=args.auth_audience,
        jwks_url=args.auth_jwks_url,
        agents_claim=args.auth_agents_claim,
        public_url=args.public_url,
        allowed_hosts=args.allowed_host or (),
        allowed_origins=args.allowed_origin or (),
        max_body_bytes=args.max_body_bytes,
        max_sessions=args.max_sessions,
        dispatch_rate=args.dispatch_rate,
    )
