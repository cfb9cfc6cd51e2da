"""Handoff prompts: the task, a role's instructions and earlier steps' outputs, bounded to a budget.

Each role's instructions are a Markdown file in ``strategies/templates/`` (``writer.md``,
``reviewer.md``, ...). An operator overrides any of them by putting a file of the same name in
the directory named by ``MCP_ORCHESTRATOR_TEMPLATES``; it is read at each step, so an edit takes
effect on the next step.

A prompt never exceeds its budget (``PROMPT_BUDGET`` characters): the instructions stay whole and
the other sections share what is left, short ones whole, long ones cut in the middle with a marker
that says how much was cut (the head and the tail of an output say the most).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

__all__ = [
    "PROMPT_BUDGET",
    "TEMPLATES_ENV",
    "TEMPLATE_NAMES",
    "Section",
    "build_prompt",
    "cut_middle",
    "fit_sections",
    "heading",
    "load_template",
]

TEMPLATES_ENV = "MCP_ORCHESTRATOR_TEMPLATES"
PROMPT_BUDGET = 24_000
TEMPLATE_NAMES: tuple[str, ...] = (
    "writer",
    "reviewer",
    "planner",
    "implementer",
    "verifier",
    "redteam",
    "comparer",
    "adjudicator",
    "merger",
)
# An operator's template is instructions, not a place for whole documents.
MAX_TEMPLATE_CHARS = 8_000
# Below this a section is not worth keeping: a cut keeps at least this much of each.
MIN_SHARE = 200


@dataclass(frozen=True)
class Section:
    """One titled part of a prompt: the task, an earlier step's output, a diff."""

    title: str
    text: str


@cache
def _packaged(name: str) -> str:
    return (resources.files("mcp_orchestrator.strategies") / "templates" / f"{name}.md").read_text(encoding="utf-8")


def load_template(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The instructions of role template ``name``: the operator's override if there is one, else the packaged one."""
    if name not in TEMPLATE_NAMES:
        raise ValueError(f"unknown template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    env = os.environ if environ is None else environ
    override = env.get(TEMPLATES_ENV)
    if override:
        path = Path(override).expanduser() / f"{name}.md"
        try:
            return path.read_text(encoding="utf-8", errors="replace")[:MAX_TEMPLATE_CHARS].strip()
        except FileNotFoundError:
            pass
    return _packaged(name).strip()


def heading(worker: str, phase: str) -> str:
    """A prompt's first line: who does what (unique per worker and phase within a run)."""
    return f"You are worker {worker}, acting as {phase}."


def cut_middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its head and tail around a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut ...]\n"
    room = max(limit - len(marker), 0)
    # The marker counts what was really cut once the marker itself takes room.
    marker = f"\n[... {len(text) - room} characters cut ...]\n"
    room = max(limit - len(marker), 0)
    head = room * 3 // 5
    tail = room - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


def fit_sections(sections: Sequence[Section], budget: int) -> list[Section]:
    """``sections`` cut to share ``budget`` characters of text: short ones whole, long ones cut evenly."""
    if sum(len(s.text) for s in sections) <= budget:
        return list(sections)
    limits: dict[int, int] = {}
    remaining = max(budget, MIN_SHARE * len(sections))
    pending = sorted(range(len(sections)), key=lambda i: len(sections[i].text))
    while pending:
        share = remaining // len(pending)
        i = pending[0]
        if len(sections[i].text) <= share:
            limits[i] = len(sections[i].text)
            remaining -= limits[i]
            pending.pop(0)
            continue
        for j in pending:
            limits[j] = max(share, MIN_SHARE)
        break
    return [Section(s.title, cut_middle(s.text, limits[i])) for i, s in enumerate(sections)]


def build_prompt(
    worker: str,
    phase: str,
    instructions: str,
    task: str,
    sections: Sequence[Section] = (),
    *,
    budget: int = PROMPT_BUDGET,
) -> str:
    """The whole prompt of one step, at most ``budget`` characters (the instructions are never cut)."""
    head = f"{heading(worker, phase)}\n\n{instructions.strip()}\n"
    parts = [Section("Task", task), *sections]
    overhead = len(head) + sum(len(f"\n## {s.title}\n\n") + 1 for s in parts)
    fitted = fit_sections(parts, max(budget - overhead, 0))
    body = "".join(f"\n## {s.title}\n\n{s.text.strip()}\n" for s in fitted)
    return cut_middle(head + body, budget)
