"""Reading a reviewer's answer: its verdict (approve / request changes, findings) and, for a comparison, its choice.

The templates ask for one fenced JSON block; free text around it is fine. Without a usable block,
a line such as ``VERDICT: APPROVE`` (or ``**Verdict:** request changes``) gives the decision alone.
Anything else is recorded as ``unparseable``: a decision is never guessed from the tone of a text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mcp_orchestrator.contracts import Finding, Verdict

__all__ = ["Choice", "extract_json", "parse_choice", "parse_verdict"]

MAX_FINDINGS = 50
_FIELD_CHARS = 2_000
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n(.*?)```", re.DOTALL)
_DECISIONS = {
    "approve": "approve",
    "approved": "approve",
    "accept": "approve",
    "accepted": "approve",
    "lgtm": "approve",
    "request_changes": "request_changes",
    "request changes": "request_changes",
    "request-changes": "request_changes",
    "requestchanges": "request_changes",
    "changes_requested": "request_changes",
    "changes requested": "request_changes",
    "reject": "request_changes",
    "rejected": "request_changes",
}
_LINE = re.compile(
    r"^[\s>*_#`-]*verdict[\s*_`]*[:=][\s*_`]*(approved?|accept(?:ed)?|lgtm|reject(?:ed)?|"
    r"request[ _-]?changes|changes[ _]requested)\b",
    re.IGNORECASE | re.MULTILINE,
)
_CHOICE_LINE = re.compile(r"^[\s>*_#`-]*(?:choice|chosen|winner)[\s*_`]*[:=][\s*_`]*([A-Za-z0-9_.-]+)", re.I | re.M)
_SEVERITIES = {
    "info": "info",
    "informational": "info",
    "note": "info",
    "nit": "info",
    "low": "low",
    "minor": "low",
    "medium": "medium",
    "moderate": "medium",
    "warning": "medium",
    "high": "high",
    "major": "high",
    "critical": "critical",
    "blocker": "critical",
}


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``: fenced blocks first (last block first), then bare objects."""
    found: list[dict[str, Any]] = []
    for m in reversed(list(_FENCE.finditer(text))):
        try:
            value = json.loads(m.group(2))
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    if found:
        return found
    decoder = json.JSONDecoder()
    bare: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1 and len(bare) < 20:
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict):
            bare.append(value)
        i = text.find("{", end)
    return list(reversed(bare))


def extract_json(text: str, *keys: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` (fenced or bare) that has one of ``keys``."""
    for obj in _objects(text):
        if any(k in obj for k in keys):
            return obj
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:_FIELD_CHARS]
    return json.dumps(value)[:_FIELD_CHARS]


def _finding(raw: Any) -> Finding | None:
    if isinstance(raw, str):
        return Finding(description=raw[:_FIELD_CHARS]) if raw.strip() else None
    if not isinstance(raw, dict):
        return None
    description = _text(raw.get("description") or raw.get("issue") or raw.get("message") or raw.get("title"))
    if not description.strip():
        return None
    severity_raw = str(raw.get("severity", "medium")).strip().lower()
    severity = _SEVERITIES.get(severity_raw)
    if severity is None:
        severity = "medium"
        description += f" (severity given as {severity_raw!r})"
    location = raw.get("location")
    if location is None and raw.get("file"):
        location = f"{raw['file']}:{raw['line']}" if raw.get("line") else raw["file"]
    fix = raw.get("suggestedFix", raw.get("suggested_fix", raw.get("fix", raw.get("recommendation"))))
    return Finding(
        severity=severity,
        location=_text(location),
        description=description,
        suggested_fix=_text(fix),
    )


def _from_object(obj: dict[str, Any]) -> Verdict:
    raw = obj.get("decision", obj.get("verdict"))
    decision = _DECISIONS.get(str(raw).strip().lower()) if isinstance(raw, str) else None
    rationale = _text(obj.get("rationale") or obj.get("reasons") or obj.get("reason") or obj.get("summary"))
    if decision is None:
        return Verdict(
            decision="unparseable", rationale=f"the verdict block's decision {raw!r} is not approve or request_changes"
        )
    items = obj.get("findings") or []
    findings = [f for f in (_finding(r) for r in (items if isinstance(items, list) else [items])) if f is not None]
    dropped = (len(items) if isinstance(items, list) else 1) - len(findings)
    if dropped > 0:
        rationale += f" ({dropped} finding(s) without a description were left out)"
    if len(findings) > MAX_FINDINGS:
        rationale += f" ({len(findings) - MAX_FINDINGS} more findings were left out)"
    return Verdict(decision=decision, findings=findings[:MAX_FINDINGS], rationale=rationale.strip())


def parse_verdict(text: str) -> Verdict:
    """The verdict in a reviewer's answer; ``unparseable`` (with the reason) when it has none."""
    obj = extract_json(text, "decision", "verdict")
    if obj is not None:
        return _from_object(obj)
    decisions = {_DECISIONS[re.sub(r"\s+", " ", m.group(1).lower())] for m in _LINE.finditer(text)}
    if len(decisions) == 1:
        return Verdict(decision=decisions.pop(), rationale="(a VERDICT line, no verdict block)")
    if decisions:
        return Verdict(decision="unparseable", rationale="the answer has conflicting VERDICT lines")
    return Verdict(decision="unparseable", rationale="the answer has no verdict block and no VERDICT line")


@dataclass(frozen=True)
class Choice:
    """A comparison's outcome: the chosen writer (or ``merge``), the merge's base and instructions, the verdict.

    ``note`` says why nothing was chosen. The verdict's rationale starts with the choice, so the run records it.
    """

    choice: str | None
    verdict: Verdict
    base: str | None = None
    merge_instructions: str = ""
    note: str = ""


def _noted(verdict: Verdict, note: str) -> Verdict:
    why = verdict.rationale
    return verdict.model_copy(update={"rationale": f"{note}: {why}" if why else note})


def parse_choice(text: str, candidates: list[str]) -> Choice:
    """The chosen candidate in a comparer's or adjudicator's answer; ``None`` when it names none of ``candidates``."""
    verdict = parse_verdict(text)
    obj = extract_json(text, "choice", "chosen", "winner")
    if obj is not None:
        raw = obj.get("choice", obj.get("chosen", obj.get("winner")))
        base = obj.get("base")
        instructions = _text(obj.get("mergeInstructions") or obj.get("merge_instructions") or obj.get("merge"))
    else:
        m = _CHOICE_LINE.search(text)
        raw, base, instructions = (m.group(1) if m else None), None, ""
    name = raw.strip() if isinstance(raw, str) else None
    shown = ", ".join(candidates)
    if name == "merge":
        base_name = base.strip() if isinstance(base, str) else None
        if base_name in candidates:
            return Choice("merge", _noted(verdict, f"merge into {base_name}"), base_name, instructions)
        note = f"a merge without a valid base ({base!r}; candidates: {shown})"
        return Choice(None, _noted(verdict, note), note=note)
    if name in candidates:
        return Choice(name, _noted(verdict, f"chose {name}"))
    if raw is None and len(candidates) == 1 and verdict.decision != "unparseable":
        # One survivor and a verdict on it: there is nothing to choose between.
        return Choice(candidates[0], _noted(verdict, f"reviewed the only candidate, {candidates[0]}"))
    note = f"no valid choice ({raw!r}; candidates: {shown})" if raw is not None else f"no choice named ({shown})"
    return Choice(None, _noted(verdict, note), note=note)
