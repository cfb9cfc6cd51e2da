"""Run every readiness probe concurrently and gather the report.

Probes: ``cli:<name>`` per CLI adapter, ``sdk:<name>`` per SDK runtime, ``store``, ``server`` and
``worker:<model>`` per model (the last ones read the CLI and SDK results). Each probe runs under its
own timeout; one that crashes or hangs becomes a ``fail`` result with the reason, never a missing line.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, get_args

import anyio

from mcp_orchestrator import __version__
from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import ModelName, utcnow
from mcp_orchestrator.readiness._common import elapsed_ms, make_result
from mcp_orchestrator.readiness.models import ProbeResult, ReadinessReport, worst

if TYPE_CHECKING:
    from mcp_orchestrator.readiness.server import ToolLister

__all__ = ["PROBE_TIMEOUT", "run_probes"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 60.0


async def run_probes(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    live: bool = False,
    lister: ToolLister | None = None,
    time_limit: float = PROBE_TIMEOUT,
) -> ReadinessReport:
    """Probe this installation. ``environ`` replaces ``os.environ``; ``lister`` lists a running server's tools
    instead of spawning one (the ``readiness`` tool); ``live`` makes one real minimal call per ready SDK;
    ``time_limit`` bounds each probe."""
    from mcp_orchestrator.readiness.clis import probe_cli
    from mcp_orchestrator.readiness.sdks import SDKS, probe_sdk
    from mcp_orchestrator.readiness.server import probe_server
    from mcp_orchestrator.readiness.storage import probe_store
    from mcp_orchestrator.readiness.workers import probe_worker
    from mcp_orchestrator.runtimes.cli.templates import ADAPTERS

    env = dict(os.environ if environ is None else environ)
    start = time.perf_counter()
    results: dict[str, ProbeResult] = {}

    async def guarded(name: str, probe: Callable[[], Awaitable[ProbeResult]]) -> None:
        # The outermost boundary of one probe: whatever happens, it reports.
        try:
            with anyio.fail_after(time_limit):
                results[name] = await probe()
        except TimeoutError:
            results[name] = make_result(
                name, "fail", f"the probe did not finish within {time_limit:g} s", "rerun `mcp-orchestrator -v probe`"
            )
        except Exception as e:
            log.exception("probe %s crashed", name)
            results[name] = make_result(
                name,
                "fail",
                f"the probe crashed: {type(e).__name__}: {e}",
                "rerun `mcp-orchestrator -v probe` and report the traceback",
            )

    store = partial(probe_store, settings.home, fsync=settings.fsync)
    plan: list[tuple[str, Callable[[], Awaitable[ProbeResult]]]] = [
        *((f"cli:{a.name}", partial(probe_cli, m, env, settings.extra_env)) for m, a in ADAPTERS.items()),
        *((s.probe, partial(probe_sdk, mode, env, live=live)) for mode, s in SDKS.items()),
        ("store", partial(anyio.to_thread.run_sync, store)),
        ("server", partial(probe_server, env, lister=lister)),
    ]
    async with anyio.create_task_group() as tg:
        for name, probe in plan:
            tg.start_soon(guarded, name, probe)
    ordered = [results[name] for name, _ in plan]
    ordered += [probe_worker(m, results, settings.default_runtime) for m in get_args(ModelName)]
    counts = {s: sum(1 for r in ordered if r.status == s) for s in ("ok", "warn", "fail")}
    return ReadinessReport(
        status=worst([r.status for r in ordered]),
        generated_at=utcnow(),
        version=__version__,
        host=socket.gethostname(),
        live=live,
        counts=counts,
        duration_ms=elapsed_ms(start),
        probes=ordered,
    )
