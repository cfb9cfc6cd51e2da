"""Settings read once at start-up from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import platformdirs

from mcp_orchestrator.contracts import RuntimeMode

__all__ = ["Settings"]

_APP = "mcp-orchestrator"


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about its environment."""

    home: Path
    roots: tuple[Path, ...]
    default_runtime: RuntimeMode | None = None
    output_excerpt_bytes: int = 8 * 1024
    output_spool_bytes: int = 64 * 1024 * 1024
    default_wait_seconds: float = 30.0
    stall_seconds: float | None = None
    step_timeout_seconds: float = 30 * 60
    extra_env: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        """Build settings from ``MCP_ORCHESTRATOR_*`` variables (see the README)."""
        env = os.environ if environ is None else environ
        home_raw = env.get("MCP_ORCHESTRATOR_HOME")
        home = Path(home_raw) if home_raw else Path(platformdirs.user_data_dir(_APP, appauthor=False))
        roots_raw = env.get("MCP_ORCHESTRATOR_ROOTS", "")
        roots = [Path(p) for p in roots_raw.split(os.pathsep) if p.strip()]
        if not roots:
            roots = [cwd or Path.cwd()]
        default_runtime = env.get("MCP_WORKER_RUNTIME_DEFAULT") or None
        if default_runtime is not None and default_runtime not in get_args(RuntimeMode):
            valid = ", ".join(get_args(RuntimeMode))
            raise ValueError(f"MCP_WORKER_RUNTIME_DEFAULT={default_runtime!r} is not one of: {valid}")
        extra = tuple(n for n in env.get("MCP_ORCHESTRATOR_WORKER_ENV", "").split(",") if n.strip())
        stall = env.get("MCP_ORCHESTRATOR_STALL_SECONDS")
        return cls(
            home=home.expanduser().resolve(),
            roots=tuple(r.expanduser().resolve() for r in roots),
            default_runtime=default_runtime,  # type: ignore[arg-type]
            stall_seconds=float(stall) if stall else None,
            extra_env=extra,
        )
