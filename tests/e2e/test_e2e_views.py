"""Issue 16 through a real client on ``serve``: run, readiness and runtimes results are compact by default (the
answer on top, nothing null or empty, compact JSON text), and ``detail: "full"`` still gives the whole record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_support import connect, read_text, text_of
from mcp import Client

pytestmark = pytest.mark.anyio

AGENT = "viewer"


async def default(c: Client, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Call ``tool`` without ``detail``: its structured result and its text block, which must mirror it."""
    result = await c.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    text = text_of(result)
    assert json.loads(text) == result.structured_content
    assert text == json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)  # compact
    return result.structured_content, text


def no_empties(node: Any, where: str = "result") -> None:
    """Nothing null or empty anywhere in a compact view."""
    if isinstance(node, dict):
        for key, value in node.items():
            assert value not in (None, "", [], {}), f"{where}.{key} is {value!r}"
            no_empties(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            no_empties(value, f"{where}[{i}]")


async def spawn_two(c: Client) -> None:
    for name, model in (("writer", "codex_cli"), ("reviewer", "gemini_cli")):
        result = await c.call_tool(
            "spawn_worker", {"agentId": AGENT, "name": name, "model": model, "runtimeMode": "mock"}
        )
        assert not result.is_error, text_of(result)


async def test_a_two_step_run_reads_as_answer_and_outcomes(server_env: dict[str, str]) -> None:
    async with connect("stdio", server_env) as c:
        await spawn_two(c)
        args = {
            "agentId": AGENT,
            "task": "say hello",
            "strategy": "codex_writes_gemini_reviews",
            "workers": ["writer", "reviewer"],
            "waitSeconds": 30,
        }
        view, text = await default(c, "dispatch_task", args)
        whole = await c.call_tool("get_run", {"runId": view["runId"], "detail": "full"})
        assert whole.structured_content is not None
        run = whole.structured_content
        got, _ = await default(c, "get_run", {"runId": view["runId"]})
        resource = json.loads(await read_text(c, f"runs://{view['runId']}"))

    assert view["status"] == "completed" and view == got
    no_empties(view)
    writer = run["steps"][0]
    assert view["answer"] == writer["output"].strip()  # the writer's answer, on top
    assert view["steps"] == [
        {"workerName": "writer", "role": "writer", "status": "completed"},
        {"workerName": "reviewer", "role": "reviewer", "status": "completed", "verdict": "unparseable"},
    ]
    assert "task" not in view and "routing" not in text and "attempts" not in text  # those are the full view's
    assert resource == run  # the full record: the resource and detail=full agree
    assert writer["routing"]["chosen"] == "mock" and writer["attempts"]
    assert len(text) * 3 < len(json.dumps(run, separators=(",", ":")))


async def test_a_failed_run_says_why_and_what_next(server_env: dict[str, str]) -> None:
    async with connect("stdio", server_env) as c:
        await spawn_two(c)
        args = {"agentId": AGENT, "task": "[[mock fail=auth]] hi", "workers": ["writer"], "waitSeconds": 30}
        view, _ = await default(c, "dispatch_task", args)
        running, _ = await default(
            c,
            "dispatch_task",
            {"agentId": AGENT, "task": "[[mock delay=30]] x", "workers": ["reviewer"], "waitSeconds": 0},
        )
        canceled, _ = await default(c, "cancel_run", {"agentId": AGENT, "runId": running["runId"]})

    assert view["status"] == "failed"
    no_empties(view)
    assert view["error"]["class"] == "auth"
    assert "readiness" in view["next"]
    [step] = view["steps"]
    assert step["status"] == "failed" and step["failureClass"] == "auth"
    assert step["output"].startswith("auth:")  # a failed step's output, short
    assert step["routing"]["chosen"] == "mock"  # routing appears on failure
    assert "answer" not in view
    assert running["status"] in ("accepted", "running") and "get_run" in running["next"]
    assert canceled["status"] == "canceled"


async def test_readiness_and_runtimes_summaries_put_problems_first(server_env: dict[str, str]) -> None:
    env = {**server_env, "MCP_ORCHESTRATOR_CODEX_BIN": "/nonexistent/codex"}  # one runtime surely unavailable
    async with connect("stdio", env) as c:
        summary, text = await default(c, "readiness", {})
        full = await c.call_tool("readiness", {"detail": "full"})
        runtimes, _ = await default(c, "runtimes", {})
        all_runtimes = await c.call_tool("runtimes", {"detail": "full"})
    assert full.structured_content is not None and all_runtimes.structured_content is not None
    report = full.structured_content
    assert summary["status"] == report["status"]
    order = {"fail": 0, "warn": 1}
    ranks = [order[p["status"]] for p in summary["probes"]]
    assert ranks == sorted(ranks)
    assert {p["probe"] for p in summary["probes"]} | set(summary["ok"]) == {p["probe"] for p in report["probes"]}
    assert "evidence" not in text and len(text) < len(json.dumps(report, separators=(",", ":")))
    statuses = [r["status"] for r in runtimes["runtimes"]]
    assert statuses[0] == "unavailable" and statuses == sorted(statuses, key=("unavailable", "ready").index)
    codex = next(r for r in runtimes["runtimes"] if r["model"] == "codex_cli" and r["mode"] == "cli")
    assert "MCP_ORCHESTRATOR_CODEX_BIN" in codex["detail"]
    assert all("capabilities" not in r for r in runtimes["runtimes"])
    assert all(r["capabilities"] for r in all_runtimes.structured_content["runtimes"])
