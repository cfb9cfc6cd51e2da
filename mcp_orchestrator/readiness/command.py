"""``mcp-orchestrator probe [--json] [--live] [--write-evidence [DIR]]``: the report on stdout, progress on stderr.

Exits 1 when any probe fails, else 0 (warnings do not fail). ``--write-evidence`` also writes the
JSON report to ``DIR/probes.json`` (default ``evidence/release/<UTC date>/``, the release bundle).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from functools import partial
from pathlib import Path

import anyio

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.readiness.models import ReadinessReport
from mcp_orchestrator.readiness.runner import run_probes

__all__ = ["default_evidence_dir", "probe_command", "render_text", "write_report"]


def default_evidence_dir() -> Path:
    """``evidence/release/<UTC date>`` under the current directory."""
    return Path("evidence") / "release" / utcnow().strftime("%Y-%m-%d")


def write_report(report: ReadinessReport, directory: Path) -> Path:
    """Write ``report`` as ``directory/probes.json``; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "probes.json"
    path.write_text(report.model_dump_json(indent=2) + "\n")
    return path


def render_text(report: ReadinessReport) -> str:
    """The report as aligned lines: status, probe, summary, and the fix under each problem."""
    width = max((len(p.probe) for p in report.probes), default=5) + 2
    lines = []
    for p in report.probes:
        lines.append(f"{p.status:5} {p.probe:{width}}{p.summary}")
        if p.remediation:
            lines.append(textwrap.indent(f"fix: {p.remediation}", " " * (6 + width)))
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items())
    live = " (live)" if report.live else ""
    lines.append(f"readiness{live}: {report.status} ({counts}) in {report.duration_ms / 1000:.1f} s")
    return "\n".join(lines)


def probe_command(args: argparse.Namespace) -> int:
    """Run the probes as the ``probe`` subcommand asks; 1 when any probe fails."""
    settings = Settings.from_env()
    print(f"probing{' (live)' if args.live else ''}: CLIs, SDKs, store, server, workers", file=sys.stderr)
    report = anyio.run(partial(run_probes, settings, live=args.live))
    if args.write_evidence is not None:
        target = Path(args.write_evidence) if args.write_evidence else default_evidence_dir()
        print(f"evidence written to {write_report(report, target)}", file=sys.stderr)
    print(report.model_dump_json(indent=2) if args.json else render_text(report))
    if report.status == "fail":
        failed = [p.probe for p in report.probes if p.status == "fail"]
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
