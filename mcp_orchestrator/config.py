"""Settings read once at start-up from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from mcp_orchestrator.contracts import RuntimeMode
from mcp_orchestrator.gateway.config import GatewayConfig

__all__ = ["Settings", "TemporalConfig"]

_APP = "mcp-orchestrator"


def _default_home() -> Path:
    """The platform's data directory for the app (imported only when MCP_ORCHESTRATOR_HOME is unset)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP, appauthor=False))


@dataclass(frozen=True)
class TemporalConfig:
    """Where the Temporal engine's cluster is and how to reach it (``MCP_ORCHESTRATOR_TEMPORAL_*``).

    ``task_queue_prefix`` names every task queue of this deployment (runs: ``<prefix>.runs``; steps:
    ``<prefix>.<model>.<runtime>``), so that several deployments can share one namespace.
    ``heartbeat_seconds`` bounds how long a killed worker's step stays running before it is interrupted;
    a step that no worker picks up within ``queue_seconds`` fails ``unavailable``.
    """

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue_prefix: str = "mcp-orchestrator"
    api_key: str | None = None
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    heartbeat_seconds: float = 10.0
    queue_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TemporalConfig:
        """Read ``MCP_ORCHESTRATOR_TEMPORAL_ADDRESS``, ``_NAMESPACE``, ``_TASK_QUEUE_PREFIX``, ``_API_KEY``,
        ``_TLS`` (1/0), ``_TLS_CA``, ``_TLS_CERT``, ``_TLS_KEY``, ``_HEARTBEAT_SECONDS`` and ``_QUEUE_SECONDS``."""

        def get(name: str) -> str | None:
            return env.get(f"MCP_ORCHESTRATOR_TEMPORAL_{name}") or None

        def path(name: str) -> Path | None:
            raw = get(name)
            return Path(raw).expanduser() if raw else None

        paths = (path("TLS_CA"), path("TLS_CERT"), path("TLS_KEY"))
        tls_raw = get("TLS")
        tls = any(paths) if tls_raw is None else tls_raw.lower() not in ("0", "false", "no", "off")
        return cls(
            address=get("ADDRESS") or cls.address,
            namespace=get("NAMESPACE") or cls.namespace,
            task_queue_prefix=get("TASK_QUEUE_PREFIX") or cls.task_queue_prefix,
            api_key=get("API_KEY"),
            tls=tls or get("API_KEY") is not None,
            tls_ca=paths[0],
            tls_cert=paths[1],
            tls_key=paths[2],
            heartbeat_seconds=float(get("HEARTBEAT_SECONDS") or cls.heartbeat_seconds),
            queue_seconds=float(get("QUEUE_SECONDS") or cls.queue_seconds),
        )


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
    fsync: bool = True
    max_running: int = 32
    queue_limits: dict[str, int] = field(default_factory=lambda: {"interactive": 1000, "batch": 10_000})
    backend_caps: dict[str, int] = field(
        default_factory=lambda: {"mock": 1000, "cli": 4, "openai_sdk": 8, "google_sdk": 8}
    )
    batch_every: int = 4
    aging_seconds: float = 10.0
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 1.0
    retry_attempts: int = 3
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 10.0
    retry_total_seconds: float = 120.0
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    executor: str = "daemon"  # serve hands runs to the per-data-dir executor; "inline" runs them in serve
    executor_idle_seconds: float = 600.0
    engine: str = "local"  # "temporal": runs are workflows on the cluster ``temporal`` names
    machine: str = field(
        default_factory=lambda: _machine(None)
    )  # this machine's name (MCP_ORCHESTRATOR_MACHINE, else the hostname): worker placement
    temporal: TemporalConfig = field(default_factory=TemporalConfig)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        """Build settings from ``MCP_ORCHESTRATOR_*`` variables (see the README)."""
        env = os.environ if environ is None else environ
        home_raw = env.get("MCP_ORCHESTRATOR_HOME")
        home = Path(home_raw) if home_raw else _default_home()
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
        tuning = _tuning(env)
        executor = env.get("MCP_ORCHESTRATOR_EXECUTOR") or "daemon"
        if executor not in ("daemon", "inline"):
            raise ValueError(f"MCP_ORCHESTRATOR_EXECUTOR={executor!r} is not one of: daemon, inline")
        tuning["executor"] = executor
        engine = env.get("MCP_ORCHESTRATOR_ENGINE") or "local"
        if engine not in ("local", "temporal"):
            raise ValueError(f"MCP_ORCHESTRATOR_ENGINE={engine!r} is not one of: local, temporal")
        tuning["engine"] = engine
        if engine == "temporal":  # the cluster executes runs: serve needs no executor of its own
            tuning["executor"] = "inline"
        tuning["temporal"] = TemporalConfig.from_env(env)
        tuning["machine"] = _machine(env.get("MCP_ORCHESTRATOR_MACHINE"))
        return cls(
            home=home.expanduser().resolve(),
            roots=tuple(r.expanduser().resolve() for r in roots),
            default_runtime=default_runtime,  # type: ignore[arg-type]
            stall_seconds=float(stall) if stall else None,
            extra_env=extra,
            gateway=GatewayConfig.from_env(env),
            **tuning,
        )


def _machine(raw: str | None) -> str:
    from mcp_orchestrator.errors import OrchestratorError
    from mcp_orchestrator.guards import this_machine

    try:
        return this_machine(raw)
    except OrchestratorError as e:
        raise ValueError(f"MCP_ORCHESTRATOR_MACHINE={raw!r}: {e}") from e


def _caps(raw: str) -> dict[str, int]:
    """``gemini_cli/cli=2,mock=100`` -> {"gemini_cli/cli": 2, "mock": 100}."""
    out: dict[str, int] = {}
    for item in raw.split(","):
        if item.strip():
            key, _, value = item.partition("=")
            out[key.strip()] = int(value)
    return out


def _tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """Scheduler and store knobs from ``MCP_ORCHESTRATOR_*`` variables (see the README)."""
    out: dict[str, Any] = {}
    numbers: dict[str, tuple[str, type[int] | type[float]]] = {
        "MAX_RUNNING": ("max_running", int),
        "BATCH_EVERY": ("batch_every", int),
        "AGING_SECONDS": ("aging_seconds", float),
        "LEASE_SECONDS": ("lease_seconds", float),
        "HEARTBEAT_SECONDS": ("heartbeat_seconds", float),
        "RETRY_ATTEMPTS": ("retry_attempts", int),
        "RETRY_BASE_SECONDS": ("retry_base_seconds", float),
        "RETRY_CAP_SECONDS": ("retry_cap_seconds", float),
        "RETRY_TOTAL_SECONDS": ("retry_total_seconds", float),
        "EXECUTOR_IDLE_SECONDS": ("executor_idle_seconds", float),
    }
    for suffix, (name, kind) in numbers.items():
        raw = env.get(f"MCP_ORCHESTRATOR_{suffix}")
        if raw:
            out[name] = kind(raw)
    limits = {}
    for cls_name in ("interactive", "batch"):
        raw = env.get(f"MCP_ORCHESTRATOR_QUEUE_{cls_name.upper()}")
        if raw:
            limits[cls_name] = int(raw)
    if limits:
        out["queue_limits"] = {"interactive": 1000, "batch": 10_000, **limits}
    caps = env.get("MCP_ORCHESTRATOR_BACKEND_CAPS")
    if caps:
        out["backend_caps"] = {"mock": 1000, "cli": 4, "openai_sdk": 8, "google_sdk": 8, **_caps(caps)}
    fsync = env.get("MCP_ORCHESTRATOR_FSYNC")
    if fsync:
        out["fsync"] = fsync.lower() not in ("0", "false", "no", "off")
    return out
