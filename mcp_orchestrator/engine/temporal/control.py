"""The cluster's shared switches, kept in Temporal itself: one control workflow per deployment.

The panic switch lives in a workflow with id ``<prefix>.control`` on the runs queue: servers engage and
release it by signal (signal-with-start, so the first one creates it) and read it by query. Every server
of the cluster checks it before it accepts work (cached for at most ``PANIC_TTL``), so an engaged switch
refuses new work cluster-wide within a second, and the engaging server cancels every running run of the
deployment.
"""

from __future__ import annotations

from temporalio import workflow

from mcp_orchestrator.contracts import PanicState

__all__ = ["CONTROL_WORKFLOW", "PANIC_TTL", "ControlWorkflow", "control_id"]

CONTROL_WORKFLOW = "mcp-orchestrator.control"
PANIC_TTL = 0.5  # seconds a server may act on a panic state it read


def control_id(prefix: str) -> str:
    """The control workflow's id for a task-queue prefix."""
    return f"{prefix}.control"


@workflow.defn(name=CONTROL_WORKFLOW, sandboxed=False)
class ControlWorkflow:
    """Holds the panic state; continues as new now and then so that its history stays short."""

    def __init__(self) -> None:
        self.panic = PanicState(engaged=False)
        self.changes = 0

    @workflow.signal(name="set_panic")
    def set_panic(self, state: PanicState) -> None:
        """Engage or release the switch."""
        self.panic = state
        self.changes += 1

    @workflow.query(name="panic")
    def get_panic(self) -> PanicState:
        """The switch as it stands."""
        return self.panic

    @workflow.run
    async def run(self, state: PanicState | None = None) -> None:
        """Wait for signals; carry the state over every 500 changes."""
        if state is not None and self.changes == 0:
            self.panic = state
        await workflow.wait_condition(lambda: self.changes >= 500)
        workflow.continue_as_new(self.panic)
