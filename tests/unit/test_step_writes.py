"""Issue #15: how a run's steps reach the store.

* The run's start is written with its plan's first step: a run that stops being ours between the read before
  its plan and that write (another instance took it over) runs nothing, and its worker is never marked busy.
* A step's end is stored with the run's next write (the last one with the run's end), or on its own soon after:
  a caller following a run whose other steps go on still sees the ended step within ``FLUSH_AFTER``.
"""

from __future__ import annotations

import time

import anyio
import pytest

from mcp_orchestrator.contracts import ProcessRef, RunRecord, Step, WorkerRecord, utcnow
from mcp_orchestrator.service import Orchestrator
from mcp_orchestrator.service.execution import RunExecution, execute_run
from mcp_orchestrator.service.orchestrator import new_run_id
from mcp_orchestrator.service.steps import FLUSH_AFTER
from mcp_orchestrator.strategies import StrategyContext, StrategyResult
from mcp_orchestrator.strategies.single import SingleWorker

AGENT = "writes"


def queued_here(orch: Orchestrator, workers: list[str]) -> RunRecord:
    """A run accepted and held by ``orch``, not yet queued in its engine: the test drives its execution."""
    run = RunRecord(
        run_id=new_run_id(),
        status="accepted",
        strategy="single_worker",
        task="a task",
        agent_id=AGENT,
        created_at=utcnow(),
        workers=workers,
        owner=orch.process,
    )
    orch.store.create_run(run)
    orch.store.own(run.run_id, orch.process.instance)
    return run


@pytest.mark.anyio
async def test_a_run_taken_over_before_its_first_step_is_written_runs_nothing(orch: Orchestrator) -> None:
    run = queued_here(orch, ["a"])
    heir = ProcessRef(instance="heir-instance", pid=1, start_ticks=1, host="elsewhere")

    class TakenOverMidway(SingleWorker):
        """The heir takes the run over after the read before the plan, before the plan's first write."""

        async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
            assert orch.store.transfer(run.run_id, orch.process.instance, heir.instance)
            orch.store.update_run(run.run_id, lambda r: r.model_copy(update={"owner": heir}))
            return await super().run_plan(ctx, workers)

    worker = orch.store.get_worker("a")
    await execute_run(orch, RunExecution(orch, run), TakenOverMidway(), [worker])

    stored = orch.store.get_run(run.run_id)
    assert (stored.status, stored.steps, stored.owner) == ("accepted", [], heir)  # the heir's to run, untouched
    assert stored.started_at is None
    after = orch.store.get_worker("a")
    assert after.status == "idle" and after.current_run_id is None
    assert not orch.store.step_output_path(run.run_id, 0).exists()  # the worker's runtime never ran


@pytest.mark.anyio
async def test_an_ended_step_is_stored_soon_while_the_runs_other_steps_go_on(orch: Orchestrator) -> None:
    run = queued_here(orch, ["a", "b"])
    seen: list[Step] = []

    class SlowAndFast(SingleWorker):
        async def run_plan(self, ctx: StrategyContext, workers: list[WorkerRecord]) -> StrategyResult:
            steps: list[Step] = []

            async def fast() -> None:
                steps.append(await ctx.run_step(workers[0], role="writer", prompt="fast"))
                ended_at = time.monotonic()
                with anyio.fail_after(FLUSH_AFTER + 5):  # a caller reading the run sees the step's end on its own
                    while True:
                        stored = {s.worker_name: s for s in orch.store.get_run(run.run_id).steps}
                        if stored["a"].status == "completed":
                            break
                        await anyio.sleep(0.01)
                assert time.monotonic() - ended_at < FLUSH_AFTER + 2
                seen.extend(stored.values())

            async with anyio.create_task_group() as tg:
                tg.start_soon(fast)
                steps.append(await ctx.run_step(workers[1], role="reviewer", prompt="[[mock delay=3]] slow"))
            return StrategyResult(", ".join(s.status for s in steps))

    workers = [orch.store.get_worker("a"), orch.store.get_worker("b")]
    await execute_run(orch, RunExecution(orch, run), SlowAndFast(), workers)

    by_worker = {s.worker_name: s for s in seen}
    assert by_worker["a"].output.startswith("mock answer")
    assert by_worker["b"].status == "running"  # stored while the other step still ran
    done = orch.store.get_run(run.run_id)
    assert done.status == "completed"
    assert sorted((s.worker_name, s.status) for s in done.steps) == [("a", "completed"), ("b", "completed")]
    assert all(s.output.startswith("mock answer") for s in done.steps)  # the last step's end, with the run's end
