"""Idempotency keys on the Temporal engine: the cluster's key, not this data directory's, says which run stands.

``dispatch`` claims the key on the cluster (``engine/temporal/keys.py``) before it stores anything. Claimed:
the run goes on as a new one. Claimed before, by any server: the dispatch answers with that run, as soon as it
can be read (its server may still be storing and starting it). A claim whose run never appears on the cluster
within ``ADOPT_AFTER`` seconds belongs to a server that died in between; this dispatch then starts the run under
the claimed runId itself (Temporal starts a runId at most once, so a late first server only follows it).
"""

from __future__ import annotations

import logging

import anyio

from mcp_orchestrator.contracts import RunRecord
from mcp_orchestrator.engine.temporal.engine import TemporalEngine
from mcp_orchestrator.errors import NotFound, Unavailable
from mcp_orchestrator.service.host import RunHost

__all__ = ["ADOPT_AFTER", "claim"]

log = logging.getLogger(__name__)

ADOPT_AFTER = 5.0  # seconds a claimed key's run may take to appear on the cluster
READ_BOUND = 30.0  # beyond that, seconds one read of it may take before the key is reported unavailable


async def claim(orch: RunHost, agent_id: str, key: str, run_id: str) -> RunRecord | str:
    """The earlier run of ``agent_id``'s ``key``, or the runId this dispatch creates (``run_id``, or an
    abandoned claim's)."""
    engine = orch.engine
    assert isinstance(engine, TemporalEngine)
    earlier = await engine.claim_key(agent_id, key, run_id)
    if earlier == run_id:
        return run_id
    # ADOPT_AFTER bounds the wait for the run to appear, not a read in progress: a read of a run that no worker
    # answers for takes its query timeout first (a loaded machine cut it short and refused a key that held).
    deadline = anyio.current_time() + ADOPT_AFTER
    with anyio.move_on_after(ADOPT_AFTER + READ_BOUND):
        while True:
            try:
                return await orch.get_run(earlier)  # this store's copy, else the cluster's record
            except NotFound:
                pass
            if anyio.current_time() >= deadline:
                break
            await anyio.sleep(0.1)  # another server is storing and starting it: nothing here to wait on
    if await engine.exists(earlier):
        raise Unavailable(
            f"run {earlier} holds idempotencyKey {key!r}, but the cluster did not answer for it",
            hint=f"Read it with get_run {earlier}; no new run was started.",
        )
    log.warning("run %s holds idempotencyKey %r but was never started (its server died): starting it", earlier, key)
    return earlier
