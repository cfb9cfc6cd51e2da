"""The workers registry: spawn (validated, jailed workdir, runtime chosen by policy), list and stop workers,
and the candidates a dispatch may use."""

from __future__ import annotations

from mcp_orchestrator.contracts import (
    FallbackPolicy,
    ModelName,
    RuntimeMode,
    WorkerRecord,
    utcnow,
)
from mcp_orchestrator.errors import Forbidden, InvalidArgument
from mcp_orchestrator.guards import check_name, jail_workdir
from mcp_orchestrator.service.panic_guard import PanicGuard
from mcp_orchestrator.service.placement import check_placeable, remote_workdir
from mcp_orchestrator.service.policy import select_runtime

__all__ = ["WorkerRegistry"]


class WorkerRegistry(PanicGuard):
    """Workers: spawn, list, stop."""

    async def spawn_worker(
        self,
        agent_id: str,
        name: str,
        model: ModelName,
        *,
        runtime_mode: RuntimeMode | None = None,
        fallback_policy: FallbackPolicy = "on_error",
        workdir: str | None = None,
        role: str | None = None,
        timeout_seconds: float | None = None,
        stall_seconds: float | None = None,
        model_name: str | None = None,
        machine: str | None = None,
    ) -> WorkerRecord:
        """Create a worker owned by ``agent_id``; ``machine`` pins its steps to that machine's worker processes."""
        agent = await self.guard_write(agent_id)
        check_name(name)
        mode = select_runtime(model, runtime_mode, self.settings.default_runtime)
        if fallback_policy not in ("on_error", "never"):
            raise InvalidArgument(
                "fallbackPolicy", f"unknown policy {fallback_policy!r}", hint="Use on_error or never."
            )
        if machine is not None:
            check_placeable(machine, self.settings)
        if machine is not None and machine != self.settings.machine:  # its path there: that machine jails it
            path = remote_workdir(workdir, machine)
        else:
            path = jail_workdir(workdir, self.settings.roots)
        worker = WorkerRecord(
            name=name,
            model=model,
            runtime_mode=mode,
            fallback_policy=fallback_policy,
            workdir=str(path),
            role=role or "writer",
            owner_agent_id=agent,
            created_at=utcnow(),
            timeout_seconds=timeout_seconds,
            stall_seconds=stall_seconds,
            model_name=model_name,
            machine=machine,
        )
        if self._shared:
            from mcp_orchestrator.service.temporal import registry

            return await registry.spawn(self, worker)
        return await self.io(self.store.put_worker, worker, create=True)

    @property
    def _shared(self) -> bool:
        """Whether the workers registry is the cluster's (Temporal) rather than this data directory's."""
        return self.settings.engine == "temporal" and self._engine is not None

    async def list_workers(self, status: str | None = None) -> list[WorkerRecord]:
        """Workers, optionally with one status."""
        return [w for w in await self._all_workers(busy=True) if status is None or w.status == status]

    async def _all_workers(self, *, busy: bool) -> list[WorkerRecord]:
        """Every worker; ``busy``: with busy/idle as it is now (on Temporal one more read of the cluster)."""
        if self._shared:
            from mcp_orchestrator.service.temporal import registry

            return await registry.listing(self, busy=busy)
        return await self.io(self.store.list_workers)

    async def _worker(self, name: str) -> WorkerRecord:
        if self._shared:
            from mcp_orchestrator.service.temporal import registry

            return await registry.get(self, name)
        return await self.io(self.store.get_worker, name)

    async def stop_worker(self, agent_id: str, name: str) -> WorkerRecord:
        """Stop a worker: it takes no new work and its running step is canceled."""
        agent = await self.guard_write(agent_id)
        check_name(name)
        worker = await self._worker(name)
        if worker.owner_agent_id != agent:
            raise Forbidden(
                f"Worker {name!r} belongs to agent {worker.owner_agent_id!r}.",
                hint="Only the agent that spawned a worker can stop it.",
            )
        reason = f"worker {name} was stopped by {agent}"
        if self._shared:  # the cluster's runs, on any server: each is told, and cancels the worker's step
            from mcp_orchestrator.service.temporal import registry

            return await registry.stop(self, worker, reason)
        stopped = {"status": "stopped"}
        worker = await self.io(self.store.update_worker, name, lambda w: w.model_copy(update=stopped))
        for execution in list(self._executions.values()):
            scope = execution.step_scopes.get(name)
            if scope is not None:
                execution.cancel_reason = reason
                scope.cancel()
        if worker.current_run_id and worker.current_run_id not in self._executions:
            await self._request_cancel(worker.current_run_id, reason)
        return worker

    async def _candidates(self, agent: str, names: list[str] | None) -> list[WorkerRecord]:
        if names is None:
            workers = await self._all_workers(busy=False)  # a dispatch needs not know who is busy
            mine = [w for w in workers if w.owner_agent_id == agent and w.status != "stopped"]
            return mine
        if not isinstance(names, list) or len(names) > 32:
            raise InvalidArgument("workers", "must be a list of at most 32 worker names")

        def check(w: WorkerRecord) -> WorkerRecord:
            if w.owner_agent_id != agent:
                raise Forbidden(
                    f"Worker {w.name!r} belongs to agent {w.owner_agent_id!r}.", hint="Use your own workers."
                )
            if w.status == "stopped":
                raise InvalidArgument("workers", f"worker {w.name!r} is stopped", hint="Spawn a new worker.")
            return w

        for name in names:
            check_name(name, "workers")
        if self._shared:  # each from the cluster, in order
            return [check(await self._worker(name)) for name in names]
        return self.read_now(lambda: [check(self.store.get_worker(name)) for name in names])  # small reads
