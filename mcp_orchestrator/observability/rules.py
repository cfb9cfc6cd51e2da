"""The rules of ``diag`` and ``optimize``: each turns a window of runs into actions.

Thresholds are module constants; every rule needs enough samples (``MIN_STEPS`` steps, three
events) before it speaks, so a handful of runs never cries wolf. Commands are ready to run: an
``export`` of the setting to change (with the value to use) or the operator command to look closer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import PanicState, RuntimeInfo, WorkerRecord, utcnow
from mcp_orchestrator.observability.cluster_rules import cluster_actions
from mcp_orchestrator.observability.history import RunFacts, StepFacts, percentile
from mcp_orchestrator.observability.models import Action, Severity

__all__ = ["RULES", "Inputs", "Window"]

MIN_STEPS = 5
TIMEOUT_CLASSES = ("timeout", "deadline_exceeded")


@dataclass
class Inputs:
    """Everything a diagnosis looks at."""

    runs: list[RunFacts]
    settings: Settings
    runtimes: list[RuntimeInfo] = field(default_factory=list)
    workers: list[WorkerRecord] = field(default_factory=list)
    panic: PanicState = field(default_factory=lambda: PanicState(engaged=False))
    queued: list[tuple[str, str, float]] = field(default_factory=list)  # (run id, priority, seconds queued)
    sources: list[str] = field(default_factory=lambda: ["log"])
    cluster: dict[str, Any] | None = None  # the Temporal deployment's queues (``None`` on the local engine)
    now: datetime = field(default_factory=utcnow)


@dataclass
class Window:
    runs: list[RunFacts]
    inputs: Inputs
    steps: list[tuple[str, StepFacts]] = field(default_factory=list)  # (run id, ended step)

    def __post_init__(self) -> None:
        self.steps = [(r.run_id, s) for r in self.runs for s in r.steps.values() if s.status and s.final_runtime]

    def by_runtime(self) -> dict[str, list[tuple[str, StepFacts]]]:
        """Ended steps by the runtime they ended on."""
        out: dict[str, list[tuple[str, StepFacts]]] = {}
        for run_id, st in self.steps:
            out.setdefault(st.final_runtime or "unknown", []).append((run_id, st))
        return dict(sorted(out.items()))

    def cap(self, runtime: str) -> int:
        """The configured backend cap of ``runtime``."""
        return int(self.inputs.settings.backend_caps.get(runtime, 4))


def _grade(rate: float, warn: float, error: float, critical: float | None = None) -> Severity | None:
    if critical is not None and rate >= critical:
        return "critical"
    return "error" if rate >= error else "warn" if rate >= warn else None


def _show_latest(steps: list[tuple[str, StepFacts]]) -> str:
    return f"mcp-orchestrator runs show {steps[-1][0]}"


def _remedy(w: Window, cls: str, runtime: str, steps: list[tuple[str, StepFacts]]) -> str:
    s = w.inputs.settings
    if cls == "rate_limited":
        return f'export MCP_ORCHESTRATOR_BACKEND_CAPS="{runtime}={max(w.cap(runtime) // 2, 1)}"'
    if cls == "stalled":
        return f"export MCP_ORCHESTRATOR_STALL_SECONDS={int(max((s.stall_seconds or 0) * 2, 120))}"
    return _show_latest(steps)


def _failure_rates(w: Window) -> list[Action]:
    out = []
    for rt, steps in w.by_runtime().items():
        failed = [(r, s) for r, s in steps if s.status == "failed"]
        rate = len(failed) / len(steps)
        severity = _grade(rate, 0.25, 0.5, 0.9)
        if len(steps) < MIN_STEPS or severity is None:
            continue
        by_class = Counter(s.failure_class or "unknown" for _, s in failed)
        top = by_class.most_common(1)[0][0]
        out.append(
            Action(
                id=f"failure-rate.{rt}",
                severity=severity,
                rationale=f"{len(failed)} of {len(steps)} steps on {rt} failed ({rate:.0%}), mostly {top}.",
                evidence={
                    "runtime": rt,
                    "steps": len(steps),
                    "failed": len(failed),
                    "rate": round(rate, 4),
                    "byClass": dict(by_class.most_common()),
                },
                command=_remedy(w, top, rt, failed),
            )
        )
    return out


def _timeouts_and_stalls(w: Window) -> list[Action]:
    out = []
    for rt, steps in w.by_runtime().items():
        for name, classes in (("timeouts", TIMEOUT_CLASSES), ("stalls", ("stalled",))):
            hit = [(r, s) for r, s in steps if s.failure_class in classes]
            rate = len(hit) / len(steps)
            severity = _grade(rate, 0.1, 0.3)
            if len(steps) < MIN_STEPS or len(hit) < 3 or severity is None:
                continue
            durations = [float(s.duration_ms or 0) for _, s in hit]
            why = "raise timeoutSeconds or split the task" if name == "timeouts" else "the worker goes silent"
            out.append(
                Action(
                    id=f"{name}.{rt}",
                    severity=severity,
                    rationale=f"{len(hit)} of {len(steps)} steps on {rt} ended by {name[:-1]} ({rate:.0%}): {why}.",
                    evidence={
                        "runtime": rt,
                        "steps": len(steps),
                        name: len(hit),
                        "rate": round(rate, 4),
                        "p95DurationMs": percentile(durations, 95),
                    },
                    command=_remedy(w, "stalled" if name == "stalls" else "timeout", rt, hit),
                )
            )
    return out


def _version(text: str | None) -> tuple[int, ...] | None:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


def _clis(w: Window) -> list[Action]:
    out = []
    for info in w.inputs.runtimes:
        if info.mode != "cli":
            continue
        used = sorted(
            x.name
            for x in w.inputs.workers
            if x.model == info.model and x.runtime_mode == "cli" and x.status != "stopped"
        )
        package = info.capabilities.get("npmPackage", info.model)
        pinned = str(info.capabilities.get("pinnedVersion", ""))
        install = f"npm install -g {package}@{pinned}" if pinned else f"npm install -g {package}"
        evidence = {"model": info.model, "version": info.version, "pinned": pinned, "workers": len(used)}
        have, want = _version(info.version), _version(pinned)
        if info.status == "unavailable":
            severity: Severity = "error" if used else "info"
            why = f"{info.model} cannot run: {(info.detail or 'unavailable').rstrip('.')}"
            out.append(
                Action(
                    id=f"cli-missing.{info.model}",
                    severity=severity,
                    rationale=why + ".",
                    evidence=evidence,
                    command=install,
                )
            )
        elif have is not None and want is not None and have < want:
            severity = "warn" if used else "info"
            why = f"{info.model} is {info.version}, older than the tested {pinned}."
            out.append(
                Action(
                    id=f"cli-outdated.{info.model}",
                    severity=severity,
                    rationale=why,
                    evidence=evidence,
                    command=install,
                )
            )
    return out


def _starvation(w: Window) -> list[Action]:
    s = w.inputs.settings
    out = []
    waits = {
        c: [float(r.queue_wait_ms) for r in w.runs if r.priority == c and r.queue_wait_ms is not None]
        for c in ("interactive", "batch")
    }
    batch, inter = percentile(waits["batch"], 95), percentile(waits["interactive"], 95)
    limit = max(3 * s.aging_seconds * 1000, 3 * inter)
    if len(waits["batch"]) >= 3 and batch > limit:
        out.append(
            Action(
                id="starvation.batch",
                severity="warn",
                rationale=f"batch runs waited {batch / 1000:.1f} s (p95), 3x over aging and interactive waits.",
                evidence={
                    "batchP95Ms": batch,
                    "interactiveP95Ms": inter,
                    "agingSeconds": s.aging_seconds,
                    "batchRuns": len(waits["batch"]),
                },
                command=f"export MCP_ORCHESTRATOR_BATCH_EVERY={max(s.batch_every // 2, 1)}",
            )
        )
    stuck = [q for q in w.inputs.queued if q[2] > max(10 * s.aging_seconds, 60.0)]
    if stuck:
        oldest = max(stuck, key=lambda q: q[2])
        out.append(
            Action(
                id="starvation.queued",
                severity="error",
                rationale=f"{len(stuck)} queued run(s) waiting, the oldest for {oldest[2]:.0f} s; nothing starts them.",
                evidence={
                    "queued": len(w.inputs.queued),
                    "stuck": len(stuck),
                    "oldestRunId": oldest[0],
                    "oldestSeconds": round(oldest[2], 1),
                    "maxRunning": s.max_running,
                },
                command="mcp-orchestrator scheduler",
            )
        )
    return out


def _panic(w: Window) -> list[Action]:
    p = w.inputs.panic
    if not p.engaged:
        return []
    return [
        Action(
            id="panic.engaged",
            severity="critical",
            rationale=f"the panic switch refuses all work (by {p.engaged_by}: {p.reason}).",
            evidence={"engagedBy": p.engaged_by, "engagedAt": p.engaged_at.isoformat() if p.engaged_at else None},
            command="mcp-orchestrator panic off",
        )
    ]


def _fallbacks(w: Window) -> list[Action]:
    tried: Counter[str] = Counter()
    fell: dict[str, list[tuple[str, str]]] = {}
    for _, st in w.steps:
        tried.update(st.tried)
        for src, dst, cls in st.fallbacks:
            fell.setdefault(src, []).append((dst, cls))
    out = []
    for rt, moves in sorted(fell.items()):
        rate = len(moves) / max(tried[rt], 1)
        if len(moves) < 3 or rate < 0.2:
            continue
        targets = Counter(dst for dst, _ in moves)
        best = targets.most_common(1)[0][0]
        out.append(
            Action(
                id=f"fallbacks.{rt}",
                severity="warn",
                rationale=f"{len(moves)} of {tried[rt]} steps tried on {rt} fell back ({rate:.0%}), mostly to {best}.",
                evidence={
                    "runtime": rt,
                    "tried": tried[rt],
                    "fallbacks": len(moves),
                    "rate": round(rate, 4),
                    "to": dict(targets),
                    "byClass": dict(Counter(c for _, c in moves)),
                },
                command=f"export MCP_WORKER_RUNTIME_DEFAULT={best}",
            )
        )
    return out


def _slow(w: Window) -> list[Action]:
    p50 = {}
    for rt, steps in w.by_runtime().items():
        done = [float(s.duration_ms or 0) for _, s in steps if s.status == "completed"]
        if rt != "mock" and len(done) >= MIN_STEPS:
            p50[rt] = (percentile(done, 50), percentile(done, 95), len(done), steps)
    out = []
    timeout_ms = w.inputs.settings.step_timeout_seconds * 1000
    for rt, (mid, high, n, steps) in p50.items():
        others = {o: v[0] for o, v in p50.items() if o != rt and v[0] > 0}
        fastest = min(others, key=lambda o: others[o]) if others else None
        ratio = mid / others[fastest] if fastest else 0.0
        evidence = {"runtime": rt, "steps": n, "p50Ms": mid, "p95Ms": high}
        if fastest and ratio >= 3:
            out.append(
                Action(
                    id=f"slow-runtime.{rt}",
                    severity="warn" if ratio >= 5 else "info",
                    rationale=f"{rt} steps take {ratio:.1f}x as long as on {fastest} (median).",
                    evidence={
                        **evidence,
                        "fastest": fastest,
                        "fastestP50Ms": others[fastest],
                        "ratio": round(ratio, 2),
                    },
                    command=f"export MCP_WORKER_RUNTIME_DEFAULT={fastest}",
                )
            )
        elif high >= 0.5 * timeout_ms:
            out.append(
                Action(
                    id=f"slow-runtime.{rt}",
                    severity="warn",
                    rationale=f"{rt} steps take {high / 1000:.0f} s (p95), over half the step timeout.",
                    evidence={**evidence, "stepTimeoutMs": timeout_ms},
                    command=_show_latest(steps),
                )
            )
    return out


def _queue_growth(w: Window) -> list[Action]:
    s = w.inputs.settings
    out = []
    for cls in ("interactive", "batch"):
        waits = [float(r.queue_wait_ms) for r in w.runs if r.priority == cls and r.queue_wait_ms is not None]
        half = len(waits) // 2
        if half < 3:
            continue
        first, second = percentile(waits[:half], 50), percentile(waits[half:], 50)
        if second >= 1000 and second > 2 * max(first, 1.0):
            out.append(
                Action(
                    id=f"queue-growth.{cls}",
                    severity="warn",
                    rationale=f"{cls} queue waits grew from {first / 1000:.1f} s to {second / 1000:.1f} s (median).",
                    evidence={
                        "priority": cls,
                        "firstHalfP50Ms": first,
                        "secondHalfP50Ms": second,
                        "runs": len(waits),
                        "maxRunning": s.max_running,
                    },
                    command=f"export MCP_ORCHESTRATOR_MAX_RUNNING={s.max_running * 2}",
                )
            )
    return out


def _retries(w: Window) -> list[Action]:
    out = []
    for rt, steps in w.by_runtime().items():
        mean = sum(s.attempts for _, s in steps) / len(steps)
        if len(steps) < MIN_STEPS or mean < 1.5:
            continue
        classes = Counter(cls for _, s in steps for _, cls in s.failures)
        top = classes.most_common(1)[0][0] if classes else "unknown"
        out.append(
            Action(
                id=f"retries.{rt}",
                severity="warn",
                rationale=f"steps on {rt} needed {mean:.1f} attempts on average, mostly after {top}.",
                evidence={
                    "runtime": rt,
                    "steps": len(steps),
                    "meanAttempts": round(mean, 3),
                    "byClass": dict(classes.most_common()),
                },
                command=_remedy(w, top if top == "rate_limited" else "rate_limited", rt, steps),
            )
        )
    return out


def _cluster(w: Window) -> list[Action]:
    return cluster_actions(w.inputs.cluster)


RULES: dict[str, tuple[Callable[[Window], list[Action]], ...]] = {
    "diag": (
        _failure_rates,
        _timeouts_and_stalls,
        _clis,
        _starvation,
        _panic,
        lambda w: cluster_actions(w.inputs.cluster),
    ),
    "optimize": (_fallbacks, _slow, _queue_growth, _retries),
}
