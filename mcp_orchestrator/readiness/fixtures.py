"""Probe fixtures: recorded probe results (``fixtures/probes/*.json``), a command that refreshes them, an age audit.

Each fixture is one :class:`ProbeFixture`: ``recordedAt``, the recorded ``result``, and ``timeless: true``
for fault fixtures (recorded in a deliberately broken environment; they do not go stale with the machine)::

    python -m mcp_orchestrator.readiness.fixtures refresh [--dir fixtures/probes] [--live] [--faults]
    python -m mcp_orchestrator.readiness.fixtures audit [--dir fixtures/probes] [--max-age-days N] [--strict] [--json]

``refresh`` records every probe of this machine (``<probe>.json``; temporary directories are written as
``<tmp>`` and the home directory as ``~``); ``--faults`` also records ``fault-*.json`` with nothing installed and no
credentials. ``audit`` flags fixtures older than ``fixtureMaxAgeDays`` (``probes/config.json``, default 30),
dated in the future, or that no longer parse as the current contract. It only warns (exit 0) unless
``--strict``, which exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.readiness.models import ProbeFixture, ProbeResult

__all__ = ["DEFAULT_DIR", "DEFAULT_MAX_AGE_DAYS", "audit", "load_config", "main", "record", "refresh"]

DEFAULT_DIR = Path("fixtures/probes")
DEFAULT_CONFIG = Path("probes/config.json")
DEFAULT_MAX_AGE_DAYS = 30.0
_FAULT_NOTE = "recorded with an empty PATH and an empty HOME: nothing installed, no credentials"


def load_config(path: Path = DEFAULT_CONFIG) -> dict[str, Any]:
    """The probes configuration (``probes/config.json``); empty when the file is absent."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def _redact(text: str) -> str:
    """Temporary directories (``mkdtemp``'s ``tmp`` + 8 random characters) as ``<tmp>``, then home as ``~``."""
    temp = re.escape(tempfile.gettempdir().rstrip("/"))
    text = re.sub(temp + r"/tmp[A-Za-z0-9_]{8}(?=/|\b)", "<tmp>", text)
    home = str(Path.home()).rstrip("/")
    return re.sub(re.escape(home) + r"(?=/|\"|$)", "~", text) if home else text


def record(
    results: Iterable[ProbeResult],
    directory: Path,
    *,
    prefix: str = "",
    timeless: bool = False,
    note: str = "",
) -> list[Path]:
    """Write one fixture per result (``<prefix><probe>.json``, ``:`` as ``-``); returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = utcnow()
    written = []
    for result in results:
        fixture = ProbeFixture(recorded_at=now, timeless=timeless, note=note, result=result)
        text = _redact(fixture.model_dump_json(indent=2))
        path = directory / f"{prefix}{result.probe.replace(':', '-')}.json"
        path.write_text(text + "\n")
        written.append(path)
    return written


async def refresh(directory: Path, *, live: bool = False, faults: bool = False, note: str = "") -> list[Path]:
    """Record every probe of this machine (and with ``faults`` the fault fixtures) into ``directory``."""
    from mcp_orchestrator.readiness.clis import probe_cli
    from mcp_orchestrator.readiness.runner import run_probes
    from mcp_orchestrator.readiness.sdks import SDKS, probe_sdk
    from mcp_orchestrator.runtimes.cli.templates import ADAPTERS

    report = await run_probes(Settings.from_env(), live=live)
    written = record(report.probes, directory, note=note)
    if faults:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "bin").mkdir()
            env = {"PATH": str(Path(tmp) / "bin"), "HOME": str(Path(tmp) / "home")}
            broken = [await probe_cli(model, env) for model in ADAPTERS]
            broken += [await probe_sdk(mode, {**env, "MCP_WORKER_RUNTIME_DEFAULT": mode}) for mode in SDKS]
            written += record(broken, directory, prefix="fault-", timeless=True, note=_FAULT_NOTE)
    return written


def audit(directory: Path, max_age_days: float, now: datetime | None = None) -> dict[str, Any]:
    """Every fixture in ``directory`` with its age, and the findings: stale, future-dated, invalid, or none at all."""
    now = now or utcnow()
    entries: list[dict[str, Any]] = []
    findings: list[dict[str, str]] = []
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for path in files:
        try:
            fixture = ProbeFixture.model_validate_json(path.read_bytes())
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the document"
            problem = f"not a valid fixture ({e.error_count()} error(s); {where}: {first['msg']})"
            findings.append({"file": path.name, "kind": "invalid", "problem": problem})
            continue
        except OSError as e:
            findings.append({"file": path.name, "kind": "invalid", "problem": f"cannot be read: {e}"})
            continue
        age = (now - fixture.recorded_at).total_seconds() / 86_400
        entry = {"file": path.name, "probe": fixture.result.probe, "status": fixture.result.status}
        entries.append({**entry, "recordedAt": fixture.recorded_at.isoformat(), "ageDays": round(age, 2)})
        entries[-1]["timeless"] = fixture.timeless
        if age < -1 / 24:
            findings.append({"file": path.name, "kind": "future", "problem": "recordedAt is in the future"})
        elif age > max_age_days and not fixture.timeless:
            findings.append(
                {"file": path.name, "kind": "stale", "problem": f"{age:.0f} days old (max {max_age_days:g})"}
            )
    if not files:
        findings.append({"file": str(directory), "kind": "empty", "problem": "no fixtures at all"})
    return {
        "status": "warn" if findings else "ok",
        "directory": str(directory),
        "maxAgeDays": max_age_days,
        "fixtures": entries,
        "findings": findings,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``refresh`` or ``audit`` (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m mcp_orchestrator.readiness.fixtures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rf = sub.add_parser("refresh", help="record every probe of this machine")
    rf.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    rf.add_argument("--live", action="store_true", help="make the SDK probes' live call too")
    rf.add_argument("--faults", action="store_true", help="also record the fault fixtures (timeless)")
    rf.add_argument("--note", default="", help="how this machine was set up (kept in each fixture)")
    au = sub.add_parser("audit", help="flag stale, future-dated or invalid fixtures")
    au.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    au.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    au.add_argument("--max-age-days", type=float)
    au.add_argument("--strict", action="store_true", help="exit 1 on any finding (default: warn only)")
    au.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "refresh":
        for path in anyio.run(partial(refresh, args.dir, live=args.live, faults=args.faults, note=args.note)):
            print(path)
        return 0
    max_age = args.max_age_days
    if max_age is None:
        max_age = float(load_config(args.config).get("fixtureMaxAgeDays", DEFAULT_MAX_AGE_DAYS))
    report = audit(args.dir, max_age)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for e in report["fixtures"]:
            print(f"{e['ageDays']:>8.2f} d  {'timeless' if e['timeless'] else '':8}  {e['file']}")
    for f in report["findings"]:
        word = "error" if args.strict else "warning"
        print(f"fixture audit {word}: {f['file']}: {f['problem']}", file=sys.stderr)
    if report["findings"]:
        hint = "refresh with `python -m mcp_orchestrator.readiness.fixtures refresh --faults`"
        print(f"fixture audit: {len(report['findings'])} finding(s); {hint}", file=sys.stderr)
    return 1 if args.strict and report["findings"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
