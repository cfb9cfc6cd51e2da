"""The mock runtime: deterministic answers, scripted delays, sizes, chunks and failures."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mcp_orchestrator.contracts import WorkerRecord, utcnow
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes import OutputSink, StepContext, StepOutcome, load_runtime
from mcp_orchestrator.runtimes.mock import MockRuntime, parse_directive

pytestmark = pytest.mark.anyio


def _ctx(prompt: str, *, name: str = "w1", role: str = "writer", sink: OutputSink | None = None) -> StepContext:
    worker = WorkerRecord(
        name=name, model="mock", runtime_mode="mock", workdir="/", role=role, owner_agent_id="a", created_at=utcnow()
    )
    reports: list[str] = []

    async def report(message: str) -> None:
        reports.append(message)

    return StepContext(
        run_id="run_00000000000000000000",
        step_index=0,
        prompt=prompt,
        worker=worker,
        workdir=Path("/"),
        output=sink or OutputSink(None),
        report=report,
    )


async def _run(prompt: str, **kw: object) -> StepOutcome:
    return await MockRuntime().run_step(_ctx(prompt, **kw))  # type: ignore[arg-type]


async def test_same_task_same_answer_across_instances() -> None:
    a = await _run("write a haiku")
    b = await MockRuntime().run_step(_ctx("write a haiku"))
    assert a.text == b.text
    assert a.usage == b.usage
    assert a.exit_code == 0
    assert a.session_id == "mock-w1"


async def test_different_tasks_and_workers_differ() -> None:
    assert (await _run("one")).text != (await _run("two")).text
    assert (await _run("one", name="w2")).text != (await _run("one")).text
    assert "(reviewer)" in (await _run("one", role="reviewer")).text


async def test_output_is_streamed_to_the_sink_exactly() -> None:
    sink = OutputSink(None, excerpt_bytes=1 << 20)
    ctx = _ctx("stream me [[mock bytes=5000 chunks=7]]", sink=sink)
    outcome = await MockRuntime().run_step(ctx)
    assert len(outcome.text.encode()) == 5000
    assert sink.total_bytes == 5000
    assert sink.excerpt() == (outcome.text, False)


@pytest.mark.parametrize("fail", ["rate_limited", "auth", "timeout", "bad_output", "unavailable"])
async def test_scripted_failures_keep_their_class(fail: str) -> None:
    with pytest.raises(RunFailure) as info:
        await _run(f"x [[mock fail={fail}]]")
    assert info.value.failure_class == fail
    assert info.value.exit_code == 1


async def test_unknown_failure_class_becomes_process_error() -> None:
    with pytest.raises(RunFailure) as info:
        await _run("x [[mock fail=meltdown]]")
    assert info.value.failure_class == "process_error"


async def test_delay_is_cancellable() -> None:
    with anyio.move_on_after(0.2) as scope:
        await _run("slow [[mock delay=30]]")
    assert scope.cancelled_caught


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("no directive", {}),
        ("[[mock]]", {}),
        (
            "a [[mock delay=1.5 fail=rate_limited bytes=100000]] b",
            {"delay": "1.5", "fail": "rate_limited", "bytes": "100000"},
        ),
        ("[[mock  stall=2   chunks=3 ]]", {"stall": "2", "chunks": "3"}),
        ("[[MOCK delay=1]]", {}),
        ("[[mock delay=]]", {}),
        ("[[mock delay=1]] [[mock delay=2]]", {"delay": "1"}),
    ],
)
def test_parse_directive(task: str, expected: dict[str, str]) -> None:
    assert parse_directive(task) == expected


async def test_silly_numbers_are_clamped_not_fatal() -> None:
    outcome = await _run("[[mock delay=-5 bytes=nan chunks=0 stall=abc]]")
    assert outcome.exit_code == 0


def test_loaded_by_name() -> None:
    assert isinstance(load_runtime("mock"), MockRuntime)
    with pytest.raises(LookupError):
        load_runtime("nonexistent")  # type: ignore[arg-type]
