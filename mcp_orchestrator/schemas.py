"""Export the published JSON Schemas of the contracts into ``contracts/``, and the tool catalog.

Run ``python -m mcp_orchestrator.schemas`` after changing a model or a tool; a test fails when the
committed files drift from the models, or ``server/catalog.json`` (what ``tools/list`` advertises) from
the tools.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from mcp_orchestrator.contracts import (
    PanicState,
    ReadinessSummary,
    Run,
    RunEvent,
    RunList,
    RunRecord,
    RunSummary,
    RuntimeList,
    RuntimeSummary,
    RunView,
    SchedulerView,
    Worker,
    WorkerList,
    WorkerRecord,
)
from mcp_orchestrator.observability.models import (
    Diagnosis,
    LogStats,
    LogValidation,
    PruneReport,
    ReplayDiff,
    ReplayPackage,
)
from mcp_orchestrator.readiness.models import ProbeFixture, ReadinessReport, ReleaseSummary, RiskRegister
from mcp_orchestrator.server.auth.tokens import TokenFile

__all__ = ["PUBLISHED", "render", "write_all"]

# file name -> model; "wire" schemas are tool results, "store" schemas are documents on disk, "fixtures" and
# "evidence" the probe fixtures and the release evidence bundle's files, "cli" the JSON of operator commands.
PUBLISHED: dict[str, type[BaseModel]] = {
    "wire/worker.schema.json": Worker,
    "wire/worker-list.schema.json": WorkerList,
    "wire/run.schema.json": Run,
    "wire/run-view.schema.json": RunView,
    "wire/readiness-summary.schema.json": ReadinessSummary,
    "wire/runtime-summary.schema.json": RuntimeSummary,
    "wire/run-summary.schema.json": RunSummary,
    "wire/run-list.schema.json": RunList,
    "wire/panic-state.schema.json": PanicState,
    "wire/runtime-list.schema.json": RuntimeList,
    "wire/scheduler.schema.json": SchedulerView,
    "store/run-record.schema.json": RunRecord,
    "store/worker-record.schema.json": WorkerRecord,
    "store/panic.schema.json": PanicState,
    "store/tokens.schema.json": TokenFile,
    "log/run-event.schema.json": RunEvent,
    "wire/readiness-report.schema.json": ReadinessReport,
    "fixtures/probe-fixture.schema.json": ProbeFixture,
    "evidence/risk-register.schema.json": RiskRegister,
    "evidence/release-summary.schema.json": ReleaseSummary,
    "wire/diagnosis.schema.json": Diagnosis,
    "store/replay-package.schema.json": ReplayPackage,
    "cli/replay-diff.schema.json": ReplayDiff,
    "cli/logs-validate.schema.json": LogValidation,
    "cli/logs-stats.schema.json": LogStats,
    "cli/prune-report.schema.json": PruneReport,
}


def render(model: type[BaseModel]) -> str:
    """The schema text of ``model`` as published (serialization mode, camelCase)."""
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all(target: Path) -> list[Path]:
    """Write every published schema under ``target``; returns the files written."""
    written = []
    for name, model in PUBLISHED.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(model))
        written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "contracts"
    for p in write_all(out):
        print(p)
    from mcp_orchestrator.server.catalog import CATALOG, built_tools
    from mcp_orchestrator.server.catalog import render as render_catalog

    CATALOG.write_text(render_catalog(built_tools()), encoding="utf-8")  # what tools/list advertises
    print(CATALOG)
