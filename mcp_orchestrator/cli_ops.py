"""Operator commands: ``logs validate|stats``, ``diag``, ``optimize``, ``replay show|diff|rerun``, ``prune``.

Data goes to stdout (JSON), diagnostics to stderr. ``cli.py`` registers them with ``add_commands``.
Only ``replay rerun`` starts the service; the others read the data directory directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from mcp_orchestrator.config import Settings
from mcp_orchestrator.errors import NotFound
from mcp_orchestrator.guards import check_run_id

if TYPE_CHECKING:  # each command imports what it runs: ``serve`` builds this parser too (issue 15: start-up)
    from mcp_orchestrator.observability.models import Diagnosis, ReplayPackage
    from mcp_orchestrator.store import JsonRunStore

__all__ = ["add_commands"]

DEFAULT_WINDOW = 50


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _store(settings: Settings) -> JsonRunStore:
    from mcp_orchestrator.store import JsonRunStore

    return JsonRunStore(settings.home, fsync=settings.fsync)


def _logs_validate(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.logcheck import validate_log
    from mcp_orchestrator.observability.runlog import log_path

    path = Path(args.file) if args.file else log_path(Settings.from_env().home)
    if args.file and not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    summary, diagnostics = validate_log(path)
    for d in diagnostics:
        print(d.render(str(path)), file=sys.stderr)
    _emit(summary.model_dump(mode="json"))
    return 1 if args.strict and not summary.ok else 0


def _logs_stats(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.runlog import log_path
    from mcp_orchestrator.observability.stats import DRIFT_THRESHOLD, log_stats

    path = Path(args.file) if args.file else log_path(Settings.from_env().home)
    threshold = DRIFT_THRESHOLD if args.threshold is None else args.threshold
    _emit(log_stats(path, args.window, threshold).model_dump(mode="json"))
    return 0


def _print_diagnosis(result: Diagnosis, args: argparse.Namespace) -> None:
    if args.json:
        actions = [a.model_dump(mode="json") for a in result.actions]
        _emit(actions if args.actions else result.model_dump(mode="json"))
        return
    if not args.actions:
        print(f"{result.kind}: {len(result.actions)} action(s) over {result.runs} run(s) (window {result.window})")
    for a in result.actions:
        print(f"{a.severity.upper():8} {a.id}: {a.rationale}")
        if args.actions:
            print(f"         $ {a.command}")


def _diagnosis(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.diagnose import at_least, diagnose_home
    from mcp_orchestrator.service.adapters import describe_runtimes

    settings = Settings.from_env()
    store = _store(settings)
    cluster = None
    if settings.engine == "temporal" and args.command == "diag":
        from mcp_orchestrator.service.temporal.cluster import read_cluster

        cluster = anyio.run(read_cluster, settings, store.list_workers())
    result = diagnose_home(args.command, settings, store, describe_runtimes(), args.window, cluster)
    _print_diagnosis(result, args)
    threshold = args.fail_on or ("error" if args.strict else None)
    failing = [a.id for a in result.actions if threshold and at_least(a.severity, threshold)]
    if failing:
        print(
            f"{args.command}: {len(failing)} action(s) at {threshold} or worse: {', '.join(failing)}", file=sys.stderr
        )
        return 1
    return 0


def _package(settings: Settings, store: JsonRunStore, run_id: str) -> ReplayPackage:
    """The package of ``run_id``, its outcome filled from the store when the package lacks it."""
    from mcp_orchestrator.observability.replay import load

    try:
        run = store.get_run(check_run_id(run_id))
    except NotFound:
        run = None
    return load(settings.home, run_id, run)


def _replay_show(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _emit(_package(settings, _store(settings), args.run_id).model_dump(mode="json"))
    return 0


def _replay_diff(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.replay import diff

    settings = Settings.from_env()
    store = _store(settings)
    result = diff(_package(settings, store, args.run_a), _package(settings, store, args.run_b))
    _emit(result.model_dump(mode="json"))
    return 0 if result.same_path else 1


def _replay_rerun(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.replay import diff, load
    from mcp_orchestrator.service import Orchestrator
    from mcp_orchestrator.service.rerun import rerun

    async def go() -> int:
        orch = Orchestrator(Settings.from_env())
        async with orch.running(take_over=False):
            run = await rerun(orch, args.run_id)
            print(f"rerun of {args.run_id}: {run.run_id}", file=sys.stderr)
            run = await orch.wait_run(run.run_id, args.timeout)
            if not run.terminal:
                await orch.cancel_run(run.agent_id, run.run_id)
                run = await orch.get_run(run.run_id)
            original = await orch.get_run(args.run_id)
            home = orch.settings.home
            result = diff(load(home, args.run_id, original), load(home, run.run_id, run))
        _emit({"runId": run.run_id, "status": run.status, "diff": result.model_dump(mode="json")})
        return 0 if result.same_path else 1

    return anyio.run(go)


def _prune(args: argparse.Namespace) -> int:
    from mcp_orchestrator.observability.retention import RetentionPolicy, prune

    settings = Settings.from_env()
    policy = RetentionPolicy.from_env()
    report = prune(settings.home, _store(settings), policy, dry_run=args.dry_run)
    _emit(report.model_dump(mode="json"))
    return 0


def _window(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be between 1 and 100000")
    return value


def add_commands(sub: Any) -> None:
    """Register the observability commands on the CLI's subparsers."""
    from mcp_orchestrator.observability.severity import SEVERITIES

    lg = sub.add_parser("logs", help="the run event log").add_subparsers(dest="logs_command", required=True)
    lv = lg.add_parser("validate", help="check every line; summary to stdout, file:line diagnostics to stderr")
    lv.add_argument("file", nargs="?", help="a log file (default: the data directory's)")
    lv.add_argument("--strict", action="store_true", help="exit 1 on any failure")
    lv.set_defaults(func=_logs_validate)
    ls = lg.add_parser("stats", help="field population with drift; queue wait, attempt and fallback rollups")
    ls.add_argument("file", nargs="?", help="a log file (default: the data directory's)")
    ls.add_argument("--window", type=_window, default=DEFAULT_WINDOW, help="runs per window (default 50)")
    ls.add_argument("--threshold", type=float, help="drift to flag (default 0.1)")  # stats load when asked
    ls.set_defaults(func=_logs_stats)

    for name, what in (("diag", "anomalies with remediations"), ("optimize", "tuning suggestions")):
        d = sub.add_parser(name, help=f"{what} over the last runs")
        d.add_argument("--json", action="store_true", help="JSON, the same payload as the MCP tool")
        d.add_argument("--actions", action="store_true", help="only the actions, with their commands")
        d.add_argument("--window", type=_window, default=DEFAULT_WINDOW, help="runs to look at (default 50)")
        d.add_argument("--strict", action="store_true", help="exit 1 on an action at --fail-on or worse")
        d.add_argument("--fail-on", choices=SEVERITIES, help="fail at this severity (implies --strict)")
        d.set_defaults(func=_diagnosis)

    rp = sub.add_parser("replay", help="replay packages").add_subparsers(dest="replay_command", required=True)
    rs = rp.add_parser("show", help="a run's replay package")
    rs.add_argument("run_id")
    rs.set_defaults(func=_replay_show)
    rd = rp.add_parser("diff", help="the path delta of two runs (exit 1 when they differ)")
    rd.add_argument("run_a")
    rd.add_argument("run_b")
    rd.set_defaults(func=_replay_diff)
    rr = rp.add_parser("rerun", help="dispatch a package again and diff the paths (exit 1 when they differ)")
    rr.add_argument("run_id")
    rr.add_argument("--timeout", type=float, default=600.0, help="seconds to wait before canceling")
    rr.set_defaults(func=_replay_rerun)

    pr = sub.add_parser("prune", help="enforce retention (TTL and caps) on finished runs, replays and the log")
    pr.add_argument("--dry-run", action="store_true", help="report what would go; remove nothing")
    pr.set_defaults(func=_prune)
