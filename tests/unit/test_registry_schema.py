"""server/registry.py: the schema compactor keeps every structured result valid, and duplicates are refused."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from mcp import Client
from pydantic import BaseModel

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import (
    Attempt,
    PanicState,
    ProbeBrief,
    ReadinessSummary,
    RoutingDecision,
    Run,
    RunError,
    RunList,
    RunSummary,
    RuntimeBrief,
    RuntimeInfo,
    RuntimeList,
    RuntimeSummary,
    RunView,
    Step,
    StepView,
    Usage,
    Worker,
    WorkerList,
    utcnow,
)
from mcp_orchestrator.observability.models import Action, Diagnosis
from mcp_orchestrator.server import build_server
from mcp_orchestrator.server.registry import DuplicateToolError, ToolRegistry, compact_schema, outline
from mcp_orchestrator.server.tools import TOOLS


def _registry() -> ToolRegistry:
    reg = ToolRegistry()
    for spec in TOOLS:
        reg.add(spec)
    return reg


OUTPUT = {t.name: t.fn_metadata.output_schema for t in _registry().tools()}
INPUT = {t.name: t.parameters for t in _registry().tools()}
# Every result model a tool can return: a tool with a compact view returns it or the full record.
RESULT_MODEL: dict[str, tuple[type[BaseModel], ...]] = {
    "spawn_worker": (Worker,),
    "stop_worker": (Worker,),
    "list_workers": (WorkerList,),
    "dispatch_task": (RunView, Run),
    "get_run": (RunView, Run),
    "cancel_run": (RunView, Run),
    "runtimes": (RuntimeSummary, RuntimeList),
    "list_worker_runs": (RunList,),
    "panic": (PanicState,),
    "diag": (Diagnosis,),
    "optimize": (Diagnosis,),
}


def validate(schema: dict[str, Any], instance: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(instance)


# ---- the compactor itself -----------------------------------------------------------------------


def test_compact_schema_drops_noise_and_null_from_optional_inputs() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "a": {"title": "A", "anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "b": {"anyOf": [{"enum": ["x", "y"], "type": "string"}, {"type": "null"}]},
            "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "title": {"type": "string", "title": "Title"},  # a property *named* title survives
        },
    }
    original = copy.deepcopy(schema)
    out = compact_schema(schema)
    assert schema == original  # never mutates its input
    assert out == {
        "type": "object",
        "properties": {
            "a": {"type": "string"},  # optional: omit it rather than send null
            "b": {"enum": ["x", "y"], "type": "string"},
            "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "title": {"type": "string"},
        },
    }


def test_compact_output_schema_keeps_null_where_a_result_can_hold_it() -> None:
    schema = {"properties": {"b": {"anyOf": [{"enum": ["x", "y"], "type": "string"}, {"type": "null"}]}}}
    assert compact_schema(schema, output=True) == {"properties": {"b": {"type": ["string", "null"]}}}


def test_compact_output_schema_keeps_only_shape() -> None:
    schema = {
        "$defs": {"Inner": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "type": "object",
        "description": "doc",
        "additionalProperties": False,
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "kind": {"enum": ["a", "b"], "type": "string", "description": "which"},
            "inner": {"$ref": "#/$defs/Inner"},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}], "default": None},
            "many": {"type": "array", "items": {"$ref": "#/$defs/Inner"}},
        },
    }
    out = compact_schema(schema, output=True)
    assert out == {
        "type": "object",
        "properties": {
            "when": {"type": "string"},
            "kind": {"type": "string"},
            "inner": {"type": "object"},
            "maybe": {"type": ["object", "null"]},
            "many": {"type": "array", "items": {"type": "object"}},
        },
    }
    assert "$ref" not in str(out)


# ---- every tool's advertised schemas -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OUTPUT))
def test_every_tool_has_a_self_contained_output_schema(name: str) -> None:
    schema = OUTPUT[name]
    assert schema is not None
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "$ref" not in str(schema)
    assert "title" not in schema


@pytest.mark.parametrize("name", sorted(INPUT))
def test_every_input_schema_is_valid_and_keeps_its_enums(name: str) -> None:
    schema = INPUT[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "$ref" not in str(schema)
    if name == "list_worker_runs":
        validate(schema, {"status": "running", "limit": 5})
        with pytest.raises(jsonschema.ValidationError):
            validate(schema, {"status": "bogus"})
    if name == "spawn_worker":
        validate(schema, {"agentId": "a", "name": "w", "model": "mock", "runtimeMode": "mock"})
        with pytest.raises(jsonschema.ValidationError):
            validate(schema, {"agentId": "a", "name": "w", "model": "gpt"})


def _now_plus(ms: int) -> Any:
    return utcnow() + timedelta(milliseconds=ms)


def _samples() -> dict[type[BaseModel], list[BaseModel]]:
    """Each result contract with optional fields empty and filled."""
    step_full = Step(
        index=0,
        worker_name="w",
        role="writer",
        runtime_mode="cli",
        status="failed",
        started_at=_now_plus(0),
        ended_at=_now_plus(5),
        duration_ms=5,
        exit_code=2,
        failure_class="rate_limited",
        output="out",
        output_truncated=True,
        output_bytes=9,
        usage=Usage(input_tokens=1, output_tokens=2, total_tokens=3),
    )
    run_min = Run(
        run_id="run_00000000000000000000",
        status="accepted",
        strategy="single_worker",
        task="t",
        agent_id="a",
        created_at=_now_plus(0),
    )
    run_full = run_min.model_copy(
        update={
            "status": "failed",
            "started_at": _now_plus(1),
            "ended_at": _now_plus(2),
            "steps": [step_full, Step(index=1, worker_name="w", role="r", runtime_mode="mock")],
            "summary": "s",
            "error": RunError(failure_class="rate_limited", message="slow down"),
        }
    )
    worker_min = Worker(
        name="w", model="mock", runtime_mode="mock", workdir="/", owner_agent_id="a", created_at=_now_plus(0)
    )
    worker_full = worker_min.model_copy(
        update={"timeout_seconds": 5.5, "model_name": "m", "session_id": "s", "status": "busy"}
    )
    summary = RunSummary(
        run_id="run_00000000000000000000",
        status="completed",
        strategy="single_worker",
        agent_id="a",
        workers=["w"],
        created_at=_now_plus(0),
        ended_at=_now_plus(1),
        task="t",
    )
    view_full = RunView(
        run_id=run_full.run_id,
        status="failed",
        strategy="single_worker",
        answer="a",
        steps=[
            StepView(
                worker_name="w",
                role="writer",
                status="failed",
                failure_class="rate_limited",
                output="rate_limited: slow down",
                attempts=[Attempt(attempt=1, runtime_mode="cli", started_at=_now_plus(0))],
                routing=RoutingDecision(strategy="pinned", chosen="cli"),
            ),
            StepView(worker_name="v", role="reviewer", status="completed", verdict="approve"),
        ],
        error=RunError(failure_class="rate_limited", message="slow down"),
        next="dispatch again later",
        notice="n",
    )
    info = RuntimeInfo(mode="cli", model="codex_cli", status="ready", version="1.0.0", capabilities={"x": 1})
    return {
        RunView: [RunView(run_id=run_min.run_id, status="accepted", strategy="single_worker"), view_full],
        RuntimeSummary: [
            RuntimeSummary(runtimes=[]),
            RuntimeSummary(runtimes=[RuntimeBrief(mode="mock", model="mock", status="unavailable", detail="d")]),
        ],
        RuntimeList: [RuntimeList(runtimes=[info])],
        ReadinessSummary: [
            ReadinessSummary(status="ok", counts={"ok": 1}, probes=[], ok=["store"]),
            ReadinessSummary(
                status="fail",
                counts={"fail": 1},
                probes=[ProbeBrief(probe="cli:codex", status="fail", summary="s", remediation="r")],
            ),
        ],
        Worker: [worker_min, worker_full],
        WorkerList: [WorkerList(workers=[]), WorkerList(workers=[worker_min, worker_full])],
        Run: [run_min, run_full],
        RunList: [RunList(runs=[]), RunList(runs=[summary], next_cursor="run_00000000000000000001")],
        PanicState: [
            PanicState(engaged=False),
            PanicState(engaged=True, reason="r", engaged_by="a", engaged_at=_now_plus(0)),
        ],
        Diagnosis: [
            Diagnosis(kind="diag", window=1, runs=0, generated_at=_now_plus(0), sources=[], actions=[]),
            Diagnosis(
                kind="optimize",
                window=50,
                runs=9,
                generated_at=_now_plus(0),
                sources=["log"],
                actions=[Action(id="a.b", severity="warn", rationale="r", evidence={"n": 1}, command="true")],
            ),
        ],
    }


@pytest.mark.parametrize("name", sorted(RESULT_MODEL))
def test_result_contracts_validate_against_the_compacted_schema(name: str) -> None:
    for model in RESULT_MODEL[name]:
        for sample in _samples()[model]:
            validate(OUTPUT[name], sample.model_dump(mode="json", by_alias=True))


@pytest.mark.parametrize("name", sorted(RESULT_MODEL))
def test_every_field_of_every_view_is_named_in_the_outline(name: str) -> None:
    """The outline is what the calling model reads: it names the fields of the default view."""
    advertised = set(OUTPUT[name]["properties"])
    default = RESULT_MODEL[name][0]
    assert advertised == {f.alias or k for k, f in default.model_fields.items()}


def test_outline_keeps_names_only() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array"}}, "required": ["a"]}
    assert outline(schema) == {"type": "object", "properties": {"a": {}, "b": {}}}


def test_the_compact_views_leave_out_nulls_and_empty_fields() -> None:
    view = RunView(
        run_id="r",
        status="running",
        strategy="single_worker",
        steps=[StepView(worker_name="w", role="writer", status="running")],
    )
    assert view.model_dump(mode="json") == {
        "runId": "r",
        "status": "running",
        "strategy": "single_worker",
        "steps": [{"workerName": "w", "role": "writer", "status": "running"}],
    }


@pytest.mark.anyio
async def test_real_results_validate_against_the_advertised_schemas(settings: Settings) -> None:
    """Drive every tool in memory; each structured result must match the outputSchema of tools/list."""
    seen: set[str] = set()
    async with Client(build_server(settings)) as client:
        listed = {t.name: t.output_schema for t in (await client.list_tools()).tools}
        assert set(listed) == set(OUTPUT)

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(name, args)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            validate(listed[name], result.structured_content)  # type: ignore[arg-type]
            seen.add(name)
            return result.structured_content

        await call("spawn_worker", {"agentId": "a", "name": "w1", "model": "mock", "timeoutSeconds": 60})
        await call("spawn_worker", {"agentId": "a", "name": "w2", "model": "mock", "modelName": "m", "role": "rev"})
        await call("list_workers", {})
        ok = await call("dispatch_task", {"agentId": "a", "task": "fine", "workers": ["w1"], "waitSeconds": 10})
        assert ok["status"] == "completed"
        bad = await call(
            "dispatch_task", {"agentId": "a", "task": "[[mock fail=auth]]", "workers": ["w2"], "waitSeconds": 10}
        )
        assert bad["status"] == "failed"
        assert bad["error"]["class"] == "auth"
        slow = await call(
            "dispatch_task", {"agentId": "a", "task": "[[mock delay=30]]", "workers": ["w1"], "waitSeconds": 0}
        )
        compact = await call("get_run", {"runId": ok["runId"]})
        assert compact["answer"] and "task" not in compact  # the compact view, the answer on top
        whole = await call("get_run", {"runId": ok["runId"], "detail": "full"})
        assert whole["steps"][0]["output"].startswith(compact["answer"][:20])
        page = await call("list_worker_runs", {"limit": 1})
        assert page["nextCursor"] is not None
        await call("list_worker_runs", {"limit": 1, "cursor": page["nextCursor"]})
        canceled = await call("cancel_run", {"agentId": "a", "runId": slow["runId"]})
        assert canceled["status"] == "canceled"
        await call("stop_worker", {"agentId": "a", "name": "w2"})
        if "runtimes" in listed:
            described = await call("runtimes", {})
            assert any(r["mode"] == "mock" and r["status"] == "ready" for r in described["runtimes"])
            assert not any("capabilities" in r for r in described["runtimes"])
            full = await call("runtimes", {"detail": "full"})
            assert all("capabilities" in r for r in full["runtimes"])
            view = await call("scheduler", {})
            assert set(view["depth"]) == {"interactive", "batch"}
        summary = await call("readiness", {})
        assert "store" in summary["ok"]  # passing probes by name only
        assert all(p["status"] != "ok" and "evidence" not in p for p in summary["probes"])
        report = await call("readiness", {"detail": "full"})
        probes = {p["probe"]: p for p in report["probes"]}
        assert probes["store"]["status"] == "ok", probes["store"]
        assert probes["server"]["evidence"]["facts"]["mode"] == "in-process"  # no server spawned from a server
        for kind in ("diag", "optimize"):
            found = await call(kind, {"window": 10})
            assert found["kind"] == kind
            assert found["runs"] == 3
            assert found["openBreakers"] == []
        await call("panic", {"agentId": "a", "reason": "test over"})
    missing = set(OUTPUT) - seen
    assert not missing, f"add a call to this test for every new tool: {missing}"


# ---- registration ------------------------------------------------------------------------------


def test_duplicate_tool_names_are_refused() -> None:
    reg = ToolRegistry()
    reg.add(TOOLS[0])
    with pytest.raises(DuplicateToolError, match=TOOLS[0].name):
        reg.add(TOOLS[0])


def test_descriptions_are_dedented_docstrings() -> None:
    for tool in _registry().tools():
        assert tool.description
        assert "\n " not in tool.description, tool.name
