"""The risk register and the go/no-go summary of a release evidence bundle.

Risks come from a static list (``probes/risks.json``) plus one per gate that did not pass and one per
probe that warned or failed; each has a likelihood, an impact, a mitigation and a score
(likelihood x impact, 1-9), highest first. The decision is ``go`` only when every gate passed; the
bundle's exit status is a separate matter (only a failed *required* gate fails the run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcp_orchestrator.contracts import utcnow
from mcp_orchestrator.readiness.models import GateResult, Level, ReleaseSummary, Risk, RiskRegister

__all__ = ["build_register", "load_static_risks", "render_register", "render_summary", "summarize"]

_LEVEL: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
# Probes whose failure stops the server itself, not just one kind of worker.
_CORE_PROBES = ("store", "server")


def _scored(risk: Risk) -> Risk:
    return risk.model_copy(update={"score": _LEVEL[risk.likelihood] * _LEVEL[risk.impact]})


def load_static_risks(path: Path) -> list[Risk]:
    """The standing risks of ``path`` (a JSON list of risks); none when the file is absent."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [Risk.model_validate({**item, "source": "static"}) for item in data]


def _gate_risk(gate: GateResult) -> Risk:
    failed = gate.status == "fail"
    likelihood: Level = "high" if failed else "medium"
    impact: Level = "high" if gate.required else "medium"
    where = f"; output in {gate.log}" if gate.log else ""
    return Risk(
        id=f"gate:{gate.name}",
        title=f"{gate.name} gate {gate.status}: {gate.detail or 'see its log'}",
        likelihood=likelihood,
        impact=impact,
        mitigation=f"rerun `{gate.command}` and fix what it reports{where}"
        if gate.command
        else f"fix what it reports and rerun it: scripts/release-evidence --only {gate.name}",
        source="gate",
    )


def _probe_risk(probe: dict[str, Any]) -> Risk:
    name = str(probe.get("probe", "?"))
    failed = probe.get("status") == "fail"
    impact: Level = "high" if name in _CORE_PROBES else "medium"
    return Risk(
        id=f"probe:{name}",
        title=f"{name}: {probe.get('summary', '')}",
        likelihood="high" if failed else "medium",
        impact=impact,
        mitigation=str(probe.get("remediation") or "see the probe's evidence"),
        source="probe",
    )


def build_register(gates: Sequence[GateResult], probes: dict[str, Any] | None, static: Sequence[Risk]) -> RiskRegister:
    """Static risks plus one per gate that did not pass and per probe that warned or failed."""
    risks = list(static)
    risks += [_gate_risk(g) for g in gates if g.status in ("warn", "fail")]
    for probe in (probes or {}).get("probes", []):
        if isinstance(probe, dict) and probe.get("status") in ("warn", "fail"):
            risks.append(_probe_risk(probe))
    scored = sorted((_scored(r) for r in risks), key=lambda r: (-r.score, r.source != "gate", r.id))
    return RiskRegister(generated_at=utcnow(), risks=scored)


def summarize(
    gates: Sequence[GateResult], register: RiskRegister, commit: str | None, dirty: bool | None
) -> ReleaseSummary:
    """Go only when every gate passed (skipped gates block too: nothing was shown)."""
    blocking = [g.name for g in gates if g.status != "pass"]
    return ReleaseSummary(
        decision="no-go" if blocking else "go",
        generated_at=utcnow(),
        commit=commit,
        dirty=dirty,
        blocking=blocking,
        required_failed=[g.name for g in gates if g.required and g.status == "fail"],
        gates=list(gates),
        top_risks=register.risks[:5],
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_register(register: RiskRegister) -> str:
    """The register as a Markdown table."""
    lines = [
        f"# Risk register ({register.generated_at:%Y-%m-%d %H:%M} UTC)",
        "",
        "| score | id | risk | likelihood | impact | mitigation |",
        "|---|---|---|---|---|---|",
    ]
    for r in register.risks:
        row = [str(r.score), r.id, r.title, r.likelihood, r.impact, r.mitigation]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def render_summary(summary: ReleaseSummary) -> str:
    """The go/no-go summary as Markdown."""
    dirty = " (uncommitted changes)" if summary.dirty else ""
    lines = [
        f"# Release evidence: {summary.decision.upper()}",
        "",
        f"- generated: {summary.generated_at:%Y-%m-%d %H:%M:%S} UTC",
        f"- commit: {summary.commit or 'unknown'}{dirty}",
        f"- blocking gates: {', '.join(summary.blocking) or 'none'}",
        f"- required gates failed: {', '.join(summary.required_failed) or 'none'}",
        "",
        "| gate | required | status | seconds | detail |",
        "|---|---|---|---|---|",
    ]
    for g in summary.gates:
        row = [g.name, "yes" if g.required else "no", g.status, f"{g.duration_ms / 1000:.1f}", g.detail]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if summary.top_risks:
        lines += ["", "Top risks (risk-register.md has them all):", ""]
        lines += [f"- [{r.score}] {r.id}: {r.title} -> {r.mitigation}" for r in summary.top_risks]
    return "\n".join(lines) + "\n"
