"""``mcp-orchestrator logs stats``: field population with drift, and rollups, over a window of runs.

Population: for each event type and each field it carries (required or optional), the share of
that type's events in the window with the field present - ``complete`` (all), ``partial`` or
``missing`` (none). Drift compares that share with the previous window of as many runs; a change
of at least the threshold is flagged. Rollups: queue wait per priority class, attempts per run,
and the fallback rate per runtime (fallbacks away from a runtime per step tried on it).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mcp_orchestrator.observability.history import RunFacts, load_history, percentile, split_window
from mcp_orchestrator.observability.logcheck import BASE_FIELDS, EXPECTED_FIELDS, OPTIONAL_FIELDS
from mcp_orchestrator.observability.models import FieldPopulation, LogStats, Rate, Rollup

__all__ = ["DRIFT_THRESHOLD", "compute_stats", "log_stats", "rollup"]

DRIFT_THRESHOLD = 0.1


def rollup(values: list[float]) -> Rollup:
    """Count, mean, p50, p95 and max of ``values``."""
    if not values:
        return Rollup(count=0, mean=0.0, p50=0.0, p95=0.0, max=0.0)
    return Rollup(
        count=len(values),
        mean=round(sum(values) / len(values), 3),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        max=float(max(values)),
    )


def _population(runs: list[RunFacts]) -> dict[tuple[str, str], tuple[int, int]]:
    """(event, field) -> (events of that type, events carrying the field)."""
    per_event: Counter[str] = Counter()
    present: Counter[tuple[str, str]] = Counter()
    for run in runs:
        for event, fields in run.shapes:
            per_event[event] += 1
            for name in fields:
                present[(event, name)] += 1
    out = {}
    for event, total in per_event.items():
        for name in (*BASE_FIELDS, *EXPECTED_FIELDS.get(event, ()), *OPTIONAL_FIELDS.get(event, ())):
            out[(event, name)] = (total, present[(event, name)])
    return out


def _fields(current: list[RunFacts], previous: list[RunFacts], threshold: float) -> list[FieldPopulation]:
    now, before = _population(current), _population(previous)
    rows = []
    for (event, name), (total, have) in sorted(now.items()):
        share = round(have / total, 4)
        state = "complete" if have == total else "missing" if have == 0 else "partial"
        prev = before.get((event, name))
        prev_share = round(prev[1] / prev[0], 4) if prev else None
        drift = round(share - prev_share, 4) if prev_share is not None else None
        rows.append(
            FieldPopulation(
                event=event,
                field=name,
                required=name not in OPTIONAL_FIELDS.get(event, ()),
                events=total,
                state=state,
                current=share,
                previous=prev_share,
                drift=drift,
                drifted=drift is not None and abs(drift) >= threshold,
            )
        )
    return rows


def _fallback_rates(runs: list[RunFacts]) -> dict[str, Rate]:
    tried: Counter[str] = Counter()
    fell: Counter[str] = Counter()
    for run in runs:
        for st in run.steps.values():
            tried.update(st.tried)
            fell.update(src for src, _, _ in st.fallbacks)
    return {
        rt: Rate(steps=n, events=fell[rt], rate=round(fell[rt] / n, 4) if n else 0.0) for rt, n in sorted(tried.items())
    }


def compute_stats(runs: list[RunFacts], window: int, *, file: str = "", threshold: float = DRIFT_THRESHOLD) -> LogStats:
    """Stats of the last ``window`` runs of ``runs``, drift against the ``window`` runs before."""
    current, previous = split_window(runs, window)
    fields = _fields(current, previous, threshold)
    waits: dict[str, list[float]] = {}
    for run in current:
        if run.queue_wait_ms is not None:
            waits.setdefault(run.priority or "unknown", []).append(float(run.queue_wait_ms))
    attempts = [float(sum(s.attempts for s in run.steps.values())) for run in current if run.steps]
    return LogStats(
        file=file,
        window=window,
        runs=len(current),
        previous_runs=len(previous),
        drift_threshold=threshold,
        fields=fields,
        drifted=[f"{f.event}.{f.field}" for f in fields if f.drifted],
        queue_wait_ms={cls: rollup(values) for cls, values in sorted(waits.items())},
        attempts_per_run=rollup(attempts),
        fallback_rate=_fallback_rates(current),
    )


def log_stats(path: Path, window: int, threshold: float = DRIFT_THRESHOLD) -> LogStats:
    """``compute_stats`` of the log at ``path``."""
    return compute_stats(load_history(path, 2 * window), window, file=str(path), threshold=threshold)
