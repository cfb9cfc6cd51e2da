"""logs stats: field population (complete / partial / missing), drift between windows, and the rollups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from obs_support import FIXTURES, cli

from mcp_orchestrator.observability.history import _tail, facts_from, load_history, percentile
from mcp_orchestrator.observability.stats import compute_stats, log_stats, rollup


def _run(n: int, *, usage: bool, prio: str = "interactive", wait: int = 10, attempts: int = 1) -> list[dict[str, Any]]:
    run = f"run_{n:012x}00000000"
    base = {"schemaVersion": 1, "runId": run, "process": "p", "ts": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"}
    ended = {"stepIndex": 0, "workerName": "w", "role": "writer", "runtimeMode": "mock", "status": "completed",
             "durationMs": 5, "outputBytes": 1, "attempt": attempts}  # fmt: skip
    if usage:
        ended["usage"] = {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
    return [
        {**base, "event": "run_accepted", "agentId": "a", "strategy": "single_worker", "priority": prio},
        {**base, "event": "run_started"},
        {**base, "event": "step_started", "stepIndex": 0, "workerName": "w", "role": "writer", "runtimeMode": "mock"},
        {**base, "event": "step_ended", **ended},
        {**base, "event": "run_ended", "status": "completed", "queueWaitMs": wait, "runMs": 7},
    ]


def _lines(runs: list[list[dict[str, Any]]]) -> list[tuple[int, bytes]]:
    flat = [event for run in runs for event in run]
    return [(i, json.dumps(e).encode()) for i, e in enumerate(flat, start=1)]


def _field(stats: Any, event: str, name: str) -> Any:
    return next(f for f in stats.fields if f.event == event and f.field == name)


def test_population_states_and_drift_against_the_previous_window() -> None:
    # Previous window: every step_ended has usage; current window: half of them.
    runs = [_run(i, usage=True) for i in range(4)] + [_run(4 + i, usage=i % 2 == 0) for i in range(4)]
    stats = compute_stats(facts_from(_lines(runs)), 4)
    assert (stats.runs, stats.previous_runs) == (4, 4)
    usage = _field(stats, "step_ended", "usage")
    assert (usage.state, usage.current, usage.previous, usage.drift, usage.drifted) == ("partial", 0.5, 1.0, -0.5, True)
    assert usage.required is False
    assert stats.drifted == ["step_ended.usage"]
    worker = _field(stats, "step_ended", "workerName")
    assert (worker.state, worker.current, worker.drifted, worker.required) == ("complete", 1.0, False, True)
    failure = _field(stats, "run_ended", "failureClass")
    assert (failure.state, failure.current) == ("missing", 0.0)  # nothing failed: absent, as it should be
    quiet = compute_stats(facts_from(_lines(runs)), 4, threshold=0.6)
    assert quiet.drifted == []


def test_rollups_queue_wait_attempts_and_fallback_rate() -> None:
    runs = [_run(i, usage=True, wait=100 * (i + 1), attempts=1 + i % 2) for i in range(4)]
    runs.append(_run(9, usage=True, prio="batch", wait=5000))
    stats = compute_stats(facts_from(_lines(runs)), 10)
    assert stats.queue_wait_ms["interactive"].model_dump() == {
        "count": 4, "mean": 250.0, "p50": 200.0, "p95": 400.0, "max": 400.0
    }  # fmt: skip
    assert stats.queue_wait_ms["batch"].count == 1
    assert (stats.attempts_per_run.mean, stats.attempts_per_run.max) == (1.4, 2.0)  # 1, 2, 1, 2 and 1
    assert stats.fallback_rate["mock"].model_dump() == {"steps": 5, "events": 0, "rate": 0.0}


def test_fallback_rate_on_the_valid_fixture() -> None:
    stats = log_stats(FIXTURES / "logs" / "valid.jsonl", 50)
    assert stats.runs == 4
    assert stats.previous_runs == 0
    assert stats.fallback_rate["cli"].model_dump() == {"steps": 1, "events": 1, "rate": 1.0}
    assert stats.fallback_rate["openai_sdk"].rate == 0.0
    assert set(stats.queue_wait_ms) == {"interactive", "batch"}


def test_percentile_and_rollup_edges() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([3.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert rollup([]).count == 0


@pytest.mark.anyio
async def test_cli_stats_over_a_window(server_env: dict[str, str]) -> None:
    result = await cli(server_env, "logs", "stats", "--window", "2", str(FIXTURES / "logs" / "valid.jsonl"))
    assert result.code == 0, result.stderr
    stats = result.json()
    assert (stats["window"], stats["runs"], stats["previousRuns"]) == (2, 2, 2)
    assert {"event", "field", "state", "current", "previous", "drift", "drifted"} <= set(stats["fields"][0])
    bad = await cli(server_env, "logs", "stats", "--window", "0")
    assert bad.code == 2


def test_a_long_log_is_read_from_its_tail(tmp_path: Path) -> None:
    runs = [_run(i, usage=True, wait=i) for i in range(40)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(raw + b"\n" for _, raw in _lines(runs)))
    everything = load_history(path)
    for last in (1, 3, 10):
        tail = _tail(path, last, block=256)  # small blocks: many lines are cut at a block boundary
        assert tail is not None
        assert tail == path.read_bytes().splitlines()[-len(tail) :]
        got = load_history(path, last)
        assert [r.run_id for r in got[-last:]] == [r.run_id for r in everything[-last:]]
        assert all(r.accepted for r in got)
    assert _tail(path, 41, block=256) is None  # fewer runs than asked: the whole file is read
    assert len(load_history(path, 41)) == 40
    assert log_stats(path, 5).model_dump() == compute_stats(everything, 5, file=str(path)).model_dump()
