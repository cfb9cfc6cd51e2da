"""Connecting to the Temporal cluster, and the names this deployment uses on it."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.common import Priority
from temporalio.contrib.pydantic import pydantic_data_converter

from mcp_orchestrator.config import TemporalConfig
from mcp_orchestrator.errors import Unavailable

__all__ = [
    "RUN_QUERY",
    "RUN_WORKFLOW",
    "STOP_SIGNAL",
    "connect",
    "queue_machine",
    "runs_queue",
    "step_queue",
    "task_priority",
    "workspace_queue",
]

RUN_WORKFLOW = "mcp-orchestrator.run"
RUN_QUERY = "record"
STOP_SIGNAL = "stop_worker"  # to a run's workflow: (worker name, reason); its step on that worker is canceled


def task_priority(priority: str) -> Priority:
    """A priority class as Temporal's task-queue priority: interactive (1) is served strictly before batch (3)."""
    return Priority(priority_key=1 if priority == "interactive" else 3)


def runs_queue(cfg: TemporalConfig) -> str:
    """The task queue of run workflows."""
    return f"{cfg.task_queue_prefix}.runs"


def step_queue(cfg: TemporalConfig | str, model: str, runtime: str, machine: str | None = None) -> str:
    """The task queue of one backend's step attempts, e.g. ``mcp-orchestrator.codex_cli.cli``; with ``machine``,
    that machine's own (``mcp-orchestrator.codex_cli.cli@build-1``: only its worker processes poll it)."""
    return f"{_prefix(cfg)}.{model}.{runtime}" + (f"@{machine}" if machine else "")


def workspace_queue(cfg: TemporalConfig | str, machine: str | None = None) -> str:
    """The task queue of git workspace operations (multi-writer strategies); with ``machine``, that machine's."""
    return f"{_prefix(cfg)}.workspace" + (f"@{machine}" if machine else "")


def queue_machine(queue: str) -> tuple[str, str | None]:
    """``<queue>@<machine>`` -> (queue, machine); a shared queue -> (queue, None)."""
    base, at, machine = queue.partition("@")
    return base, (machine if at else None)


def _prefix(cfg: TemporalConfig | str) -> str:
    return cfg if isinstance(cfg, str) else cfg.task_queue_prefix


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as e:
        raise Unavailable(
            f"cannot read the Temporal {what} {path}: {e.strerror}",
            hint=f"Fix MCP_ORCHESTRATOR_TEMPORAL_TLS_{what.upper()} or unset it.",
        ) from e


async def connect(cfg: TemporalConfig) -> Client:
    """A client of ``cfg``'s cluster; ``Unavailable`` says what failed, where, and how to fix it."""
    tls: TLSConfig | bool = False
    if cfg.tls:
        tls = TLSConfig(
            server_root_ca_cert=_read(cfg.tls_ca, "ca"),
            client_cert=_read(cfg.tls_cert, "cert"),
            client_private_key=_read(cfg.tls_key, "key"),
        )
    try:
        return await Client.connect(
            cfg.address,
            namespace=cfg.namespace,
            api_key=cfg.api_key,
            tls=tls,
            data_converter=pydantic_data_converter,
        )
    except Exception as e:  # the SDK raises RuntimeError for every connection failure
        raise Unavailable(
            f"the Temporal cluster at {cfg.address} (namespace {cfg.namespace!r}) is unreachable: {e}",
            hint=(
                "Start it (e.g. `temporal server start-dev`), or point MCP_ORCHESTRATOR_TEMPORAL_ADDRESS at it; "
                "a hosted cluster needs MCP_ORCHESTRATOR_TEMPORAL_API_KEY or the TLS settings. "
                "Nothing was accepted."
            ),
        ) from e
