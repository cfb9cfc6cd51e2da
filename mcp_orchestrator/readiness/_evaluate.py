"""Reading gate outputs: JUnit XML totals and benchmark goals."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from mcp_orchestrator.readiness.models import GateStatus

__all__ = ["bench_verdict", "junit_totals"]

_GOAL = re.compile(r"goal_(?P<metric>\w+?)_(?P<bound>max|min)")


def junit_totals(path: Path) -> dict[str, Any] | None:
    """``{tests, failures, errors, skipped, time}`` summed over the suites of a JUnit XML file, or ``None``."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals: dict[str, Any] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for suite in suites:
        for key in ("tests", "failures", "errors", "skipped"):
            totals[key] += int(suite.get(key, "0") or 0)
        totals["time"] += float(suite.get("time", "0") or 0)
    return totals


def bench_verdict(data: dict[str, Any]) -> tuple[GateStatus, str, dict[str, Any]]:
    """Check every ``goal_<metric>_max`` / ``goal_<metric>_min`` of a benchmark's JSON against ``<metric>``.

    A goal missed fails; a goal whose metric is not a top-level number is reported as unchecked (warn).
    """
    verdicts, metrics = [], {}
    status: GateStatus = "pass"
    for key, limit in data.items():
        match = _GOAL.fullmatch(key)
        if match is None or not isinstance(limit, int | float):
            continue
        metric, bound = match["metric"], match["bound"]
        value = data.get(metric)
        if not isinstance(value, int | float):
            verdicts.append(f"{metric}: not checkable")
            status = "fail" if status == "fail" else "warn"
            continue
        metrics[metric] = value
        met = value <= limit if bound == "max" else value >= limit
        verdicts.append(f"{metric} {value:g} {'<=' if bound == 'max' else '>='} {limit:g}{'' if met else ' MISSED'}")
        if not met:
            status = "fail"
    if not verdicts:
        return "warn", "no goal to check", metrics
    return status, "; ".join(verdicts), metrics
