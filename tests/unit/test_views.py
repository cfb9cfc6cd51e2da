"""server/views.py: which step is the answer, how long texts are cut, what the next action says."""

from __future__ import annotations

from typing import Any

from mcp_orchestrator.contracts import Run, RunError, Step, Verdict, utcnow
from mcp_orchestrator.server.views import ANSWER_CHARS, FAILED_OUTPUT_CHARS, answer_step, run_view


def step(index: int, worker: str, role: str, status: str = "completed", output: str = "", **extra: Any) -> Step:
    return Step.model_validate(
        {"index": index, "worker_name": worker, "role": role, "runtime_mode": "mock", "status": status}
        | {"output": output or f"answer of {worker}"}
        | extra
    )


def run(*steps: Step, status: str = "completed", summary: str = "", error: RunError | None = None) -> Run:
    return Run.model_validate(
        {
            "run_id": "run_0123456789abcdef0123",
            "status": status,
            "strategy": "parallel_generate_adjudicate",
            "task": "t",
            "agent_id": "a",
            "created_at": utcnow(),
            "steps": list(steps),
            "summary": summary,
            "error": error,
        }
    )


def test_the_answer_is_the_chosen_writer_else_the_last_writer_else_the_last_step() -> None:
    a, b = step(0, "a", "writer"), step(1, "b", "writer")
    judge = step(2, "j", "reviewer", verdict=Verdict(decision="approve"))
    assert answer_step(run(a, b, judge, summary="x\nchosen: a (mock)\n")) == a
    assert answer_step(run(a, b, judge)) == b
    assert answer_step(run(step(0, "r", "reviewer"), step(1, "s", "auditor"))) is not None
    assert answer_step(run(step(0, "r", "reviewer"), step(1, "s", "auditor"))).worker_name == "s"  # type: ignore[union-attr]
    failed_writer = step(0, "a", "writer", status="failed", output="auth: no key")
    assert answer_step(run(failed_writer, status="failed")) is None


def test_a_long_answer_is_cut_and_points_at_the_whole_output() -> None:
    view = run_view(run(step(0, "a", "writer", output="x" * (ANSWER_CHARS + 500))))
    assert view.answer.startswith("x" * ANSWER_CHARS)
    assert "…[500 more characters: runs://run_0123456789abcdef0123/steps/0/output]" in view.answer
    assert view.next == "The whole answer: runs://run_0123456789abcdef0123/steps/0/output."
    short = run_view(run(step(0, "a", "writer", output="  hi  ")))
    assert short.answer == "hi" and short.next == ""


def test_a_failed_step_keeps_a_short_output_and_the_next_action_names_it() -> None:
    bad = step(0, "a", "writer", status="failed", output="process_error: exit 3\n" + "y" * 1000)
    view = run_view(run(bad, status="failed", error=RunError(failure_class="process_error", message="exit 3")))
    [outcome] = view.steps
    assert outcome.output.startswith("process_error: exit 3")
    assert len(outcome.output) < FAILED_OUTPUT_CHARS + 100
    assert "runs://run_0123456789abcdef0123/steps/0/output" in view.next
    assert view.answer == ""
    dumped = view.model_dump(mode="json")
    assert "answer" not in dumped and dumped["error"] == {"class": "process_error", "message": "exit 3"}


def test_a_run_in_progress_says_how_to_follow_it() -> None:
    view = run_view(run(step(0, "a", "writer", status="running", output=" "), status="running"))
    assert "get_run" in view.next and "cancel_run" in view.next
    assert view.model_dump(mode="json")["steps"] == [{"workerName": "a", "role": "writer", "status": "running"}]
