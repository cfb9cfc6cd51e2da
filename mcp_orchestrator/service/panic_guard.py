"""The write guard: every mutating call checks the agent id and the panic switch; engaging the switch cancels
running steps (cluster-wide under the Temporal engine, where the switch is kept in the cluster)."""

from __future__ import annotations

from mcp_orchestrator.contracts import (
    PanicState,
    utcnow,
)
from mcp_orchestrator.errors import InvalidArgument, PanicEngaged
from mcp_orchestrator.guards import check_agent_id
from mcp_orchestrator.service.core import OrchestratorCore

__all__ = ["PanicGuard"]


class PanicGuard(OrchestratorCore):
    """The write guard and the panic switch."""

    async def guard_write(self, agent_id: object) -> str:
        """Validate the caller and refuse while the panic switch is engaged."""
        agent = check_agent_id(agent_id)
        panic = await self._get_panic()
        if panic.engaged:
            raise PanicEngaged(panic.reason, panic.engaged_by)
        return agent

    async def panic(self, agent_id: str, reason: str) -> PanicState:
        """Engage the write guard and cancel every running step here (others follow within a second)."""
        agent = check_agent_id(agent_id)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000 or "\x00" in reason:
            raise InvalidArgument("reason", "must be 1-1000 characters without NUL", hint="Say why work must stop.")
        current = await self._get_panic()
        if current.engaged:
            return current
        state = PanicState(engaged=True, reason=self.redactor.text(reason), engaged_by=agent, engaged_at=utcnow())
        await self._set_panic(state)
        for run_id in self.engine.running() | self.engine.queued():
            await self._cancel_here(run_id, f"panic engaged by {agent}: {reason}")
        if self.settings.engine == "temporal":  # and every run of the cluster, whichever server started it
            from mcp_orchestrator.engine.temporal.engine import TemporalEngine

            assert isinstance(self.engine, TemporalEngine)
            await self.engine.cancel_all()
        return state

    async def _get_panic(self) -> PanicState:
        """The panic switch: this data directory's, or on the Temporal engine the cluster's as well."""
        local = self.read_now(self.store.get_panic)
        if local.engaged or self.settings.engine != "temporal" or self._engine is None:
            return local
        from mcp_orchestrator.engine.temporal.engine import TemporalEngine

        assert isinstance(self.engine, TemporalEngine)
        return await self.engine.get_panic()

    async def _set_panic(self, state: PanicState) -> PanicState:
        """Engage or release the switch here, and on the Temporal engine for the whole cluster."""
        stored = await self.io(self.store.set_panic, state)
        if self.settings.engine == "temporal" and self._engine is not None:
            from mcp_orchestrator.engine.temporal.engine import TemporalEngine

            assert isinstance(self.engine, TemporalEngine)
            await self.engine.set_panic(state)
        return stored

    async def release_panic(self) -> PanicState:
        """Release the write guard (operators only: not exposed as a tool)."""
        return await self._set_panic(PanicState(engaged=False))

    async def panic_state(self) -> PanicState:
        """The current panic state."""
        return await self._get_panic()
