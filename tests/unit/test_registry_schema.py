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
    PanicState,
    Run,
    RunError,
    RunList,
    RunSummary,
    Step,
    Usage,
    Worker,
    WorkerList,
    utcnow,
)
from mcp_orchestrator.observability.models import Action, Diagnosis
from mcp_orchestrator.server import build_server
from mcp_orchestrator.server.registry import DuplicateToolError, ToolRegistry, compact_schema
from mcp_orchestrator.server.tools import TOOLS


def _registry() -> ToolRegistry:
    reg = ToolRegistry()
    for spec in TOOLS:
        reg.add(spec)
    return reg


OUTPUT = {t.name: t.fn_metadata.output_schema for t in _registry().tools()}
INPUT = {t.name: t.parameters for t in _registry().tools()}
RESULT_MODEL: dict[str, type[BaseModel]] = {
    "spawn_worker": Worker,
    "stop_worker": Worker,
    "list_workers": WorkerList,
    "dispatch_task": Run,
    "get_run": Run,
    "cancel_run": Run,
    "list_worker_runs": RunList,
    "panic": PanicState,
    "diag": Diagnosis,
    "optimize": Diagnosis,
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
    return {
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
    for sample in _samples()[RESULT_MODEL[name]]:
        validate(OUTPUT[name], sample.model_dump(mode="json", by_alias=True))


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
        await call("get_run", {"runId": ok["runId"]})
        page = await call("list_worker_runs", {"limit": 1})
        assert page["nextCursor"] is not None
        await call("list_worker_runs", {"limit": 1, "cursor": page["nextCursor"]})
        canceled = await call("cancel_run", {"agentId": "a", "runId": slow["runId"]})
        assert canceled["status"] == "canceled"
        await call("stop_worker", {"agentId": "a", "name": "w2"})
        if "runtimes" in listed:
            described = await call("runtimes", {})
            assert any(r["mode"] == "mock" and r["status"] == "ready" for r in described["runtimes"])
            view = await call("scheduler", {})
            assert set(view["depth"]) == {"interactive", "batch"}
        report = await call("readiness", {})
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
