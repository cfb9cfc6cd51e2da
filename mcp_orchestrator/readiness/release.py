"""Release evidence: run every gate, then write the outputs, a risk register and a go/no-go summary.

    python -m mcp_orchestrator.readiness.release [--config probes/config.json] [--out DIR]
        [--tests-from JUNIT --tests-status N] [--only NAME ...] [--skip NAME ...] [--strict] [-- PYTEST_ARGS]

(``scripts/release-evidence`` runs it with the project's interpreter.) The gates come from the config's
``gates`` list: ``{name, argv, required, timeout, kind}``, where ``{python}`` and ``{out}`` in ``argv``
become this interpreter and the bundle directory. Kinds: ``check`` (exit 0 passes), ``pytest`` (its
JUnit XML is read; ``--tests-from`` reuses the XML of a run that already happened instead of running the
suite again, with that run's exit status), ``probes`` (the readiness report), ``report`` (a JSON report
whose ``status`` is ok/warn/fail) and ``bench`` (its JSON; every ``goal_<metric>_max|min`` is checked).
Each gate has a timeout; a gate that runs over is killed with its whole process group and fails.

The bundle (default ``evidence/release/<UTC date>/``): ``gates/<name>.out.txt`` and ``.err.txt``,
``gates.json``, ``junit.xml``, ``probes.json``, ``bench/<name>.json``, ``risk-register.json|md``,
``summary.json|md``. The summary goes to stdout. Exit 1 when a *required* gate failed (with ``--strict``,
on any no-go); a no-go from advisory gates (benchmarks are noisy) is recorded, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_orchestrator.readiness import risks
from mcp_orchestrator.readiness._evaluate import bench_verdict, junit_totals
from mcp_orchestrator.readiness.command import default_evidence_dir
from mcp_orchestrator.readiness.fixtures import DEFAULT_CONFIG, load_config
from mcp_orchestrator.readiness.models import GateResult, GateStatus

__all__ = ["GateSpec", "RunContext", "load_gates", "main", "run_gate"]

_PRODUCED = (
    "gates.json",
    "junit.xml",
    "probes.json",
    "risk-register.json",
    "risk-register.md",
    "summary.json",
    "summary.md",
)


@dataclass(frozen=True)
class GateSpec:
    """One gate of the config."""

    name: str
    argv: list[str]
    required: bool = False
    timeout: float = 600.0
    kind: str = "check"


@dataclass(frozen=True)
class RunContext:
    """What every gate run shares."""

    out: Path
    python: str = sys.executable
    pytest_args: list[str] = field(default_factory=list)
    tests_from: Path | None = None
    tests_status: int | None = None


def load_gates(config: dict[str, Any]) -> list[GateSpec]:
    """The ``gates`` of a probes config."""
    return [
        GateSpec(
            name=str(g["name"]),
            argv=[str(a) for a in g["argv"]],
            required=bool(g.get("required", False)),
            timeout=float(g.get("timeout", 600)),
            kind=str(g.get("kind", "check")),
        )
        for g in config.get("gates", [])
    ]


def _execute(argv: list[str], timeout: float, stdout: Path, stderr: Path) -> tuple[int | None, str]:
    """Run ``argv`` in its own session with output to files; kill the group on timeout."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        except OSError as e:
            return None, f"did not start: {e}"
        try:
            return proc.wait(timeout=timeout), ""
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, f"timed out after {timeout:g} s"


def _last_line(*paths: Path) -> str:
    for path in paths:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()] if path.exists() else []
        if lines:
            return lines[-1].strip()[:200]
    return ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tests(spec: GateSpec, ctx: RunContext, code: int | None, problem: str) -> tuple[GateStatus, str, dict[str, Any]]:
    totals = junit_totals(ctx.out / "junit.xml")
    if totals is None:
        return "fail", problem or f"no JUnit XML (pytest exit {code})", {}
    bad = totals["failures"] + totals["errors"]
    detail = (
        f"{totals['tests']} tests: {bad} failed, {totals['skipped']} skipped in {totals['time']:.0f} s (exit {code})"
    )
    ok = code == 0 and bad == 0 and totals["tests"] > 0
    return ("pass" if ok else "fail"), detail, totals


def _judge(spec: GateSpec, ctx: RunContext, code: int | None, problem: str) -> tuple[GateStatus, str, dict[str, Any]]:
    """Status, detail and metrics of a gate that ran."""
    out_file = ctx.out / "gates" / f"{spec.name}.out.txt"
    if spec.kind == "pytest":
        return _tests(spec, ctx, code, problem)
    if problem:
        return "fail", problem, {}
    if spec.kind == "bench":
        data = _read_json_line(out_file)
        if data is None or code != 0:
            return "fail", f"exit {code}, no JSON result: {_last_line(ctx.out / 'gates' / f'{spec.name}.err.txt')}", {}
        (ctx.out / "bench").mkdir(exist_ok=True)
        (ctx.out / "bench" / f"{spec.name}.json").write_text(json.dumps(data, indent=2) + "\n")
        return bench_verdict(data)
    if spec.kind in ("probes", "report"):
        report = _read_json(ctx.out / "probes.json") if spec.kind == "probes" else _read_json(out_file)
        if not isinstance(report, dict):
            return "fail", f"exit {code}, no JSON report", {}
        metrics: dict[str, Any] = {"status": report.get("status")}
        if isinstance(report.get("counts"), dict):
            metrics.update(report["counts"])
        if isinstance(report.get("findings"), list):
            metrics["findings"] = len(report["findings"])
        detail = ", ".join(f"{k} {v}" for k, v in metrics.items())
        status: GateStatus = "fail" if code != 0 else "warn" if report.get("status") != "ok" else "pass"
        return status, detail, metrics
    err_file = ctx.out / "gates" / f"{spec.name}.err.txt"
    return ("pass", "exit 0", {}) if code == 0 else ("fail", f"exit {code}: {_last_line(out_file, err_file)}", {})


def _read_json_line(path: Path) -> dict[str, Any] | None:
    """The last line of ``path`` that is a JSON object (benchmarks print one)."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    for line in reversed(lines):
        with suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                return data
    return None


def run_gate(spec: GateSpec, ctx: RunContext) -> GateResult:
    """Run one gate (or, for tests with ``tests_from``, read the earlier run's results)."""
    (ctx.out / "gates").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if spec.kind == "pytest" and ctx.tests_from is not None:
        if ctx.tests_from.resolve() != (ctx.out / "junit.xml").resolve() and ctx.tests_from.exists():
            shutil.copyfile(ctx.tests_from, ctx.out / "junit.xml")
        status, detail, metrics = _tests(spec, ctx, ctx.tests_status, f"no JUnit XML at {ctx.tests_from}")
        detail = f"reused {ctx.tests_from}: {detail}"
        return GateResult(name=spec.name, required=spec.required, status=status, detail=detail, metrics=metrics)
    argv = [a.replace("{python}", ctx.python).replace("{out}", str(ctx.out)) for a in spec.argv]
    if spec.kind == "pytest":
        argv += ctx.pytest_args
    out_file = ctx.out / "gates" / f"{spec.name}.out.txt"
    code, problem = _execute(argv, spec.timeout, out_file, out_file.with_name(f"{spec.name}.err.txt"))
    status, detail, metrics = _judge(spec, ctx, code, problem)
    return GateResult(
        name=spec.name,
        required=spec.required,
        status=status,
        detail=detail,
        command=shlex.join(argv),
        exit_code=code,
        duration_ms=round((time.perf_counter() - start) * 1000),
        log=f"gates/{spec.name}.out.txt",
        metrics=metrics,
    )


def _git_state() -> tuple[str | None, bool | None]:
    """The commit and whether the work tree has changes (read-only git commands)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=30)
        status = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if head.returncode != 0:
        return None, None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/release-evidence", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--risks", type=Path, help="static risks (default: risks.json beside the config)")
    p.add_argument("--out", type=Path, help="bundle directory (default: evidence/release/<UTC date>)")
    p.add_argument("--tests-from", type=Path, help="reuse this JUnit XML instead of running the tests")
    p.add_argument("--tests-status", type=int, help="the exit status of the pytest run that wrote --tests-from")
    p.add_argument("--only", action="append", default=[], help="run only these gates (the rest are skipped)")
    p.add_argument("--skip", action="append", default=[], help="skip these gates (a skipped gate blocks go)")
    p.add_argument("--strict", action="store_true", help="exit 1 on any no-go, not only on a failed required gate")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gates and write the bundle; see the module docstring for the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    pytest_args = words[words.index("--") + 1 :] if "--" in words else []
    args = _parser().parse_args(words[: words.index("--")] if "--" in words else words)
    gates = load_gates(load_config(args.config))
    if not gates:
        print(f"release-evidence: no gates in {args.config}", file=sys.stderr)
        return 2
    out: Path = args.out or default_evidence_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in _PRODUCED:
        if not (args.tests_from and (out / name).resolve() == args.tests_from.resolve()):
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "gates", ignore_errors=True)
    shutil.rmtree(out / "bench", ignore_errors=True)
    ctx = RunContext(out=out, pytest_args=pytest_args, tests_from=args.tests_from, tests_status=args.tests_status)
    results: list[GateResult] = []
    for spec in gates:
        if (args.only and spec.name not in args.only) or spec.name in args.skip:
            results.append(GateResult(name=spec.name, required=spec.required, status="skipped", detail="not run"))
            continue
        print(f"== gate {spec.name}", file=sys.stderr)
        results.append(run_gate(spec, ctx))
        print(f"   {results[-1].status}: {results[-1].detail}", file=sys.stderr)
    (out / "gates.json").write_text(json.dumps([g.model_dump(mode="json") for g in results], indent=2) + "\n")
    static = risks.load_static_risks(args.risks or args.config.with_name("risks.json"))
    register = risks.build_register(results, _read_json(out / "probes.json"), static)
    summary = risks.summarize(results, register, *_git_state())
    (out / "risk-register.json").write_text(register.model_dump_json(indent=2) + "\n")
    (out / "risk-register.md").write_text(risks.render_register(register))
    (out / "summary.json").write_text(summary.model_dump_json(indent=2) + "\n")
    (out / "summary.md").write_text(risks.render_summary(summary))
    print(risks.render_summary(summary))
    print(f"release evidence: {summary.decision} -> {out}", file=sys.stderr)
    if summary.required_failed:
        print(f"release evidence: required gate(s) failed: {', '.join(summary.required_failed)}", file=sys.stderr)
        return 1
    return 1 if args.strict and summary.decision == "no-go" else 0


if __name__ == "__main__":
    raise SystemExit(main())
