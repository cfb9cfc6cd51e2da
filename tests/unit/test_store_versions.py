"""Issue #15: stored documents carry a schema version. A data directory written by the release before this change
(``fixtures/store/format-1``, made by ``fixtures/store/make_format_1.py``) reads with this code and is migrated on
write; a document from a newer release is refused by name and left in place, never quarantined."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mcp import Client
from support.servers import REPO, stdio_params

from mcp_orchestrator.contracts import STORE_SCHEMA_VERSION
from mcp_orchestrator.errors import NewerDocument
from mcp_orchestrator.store import JsonRunStore, RunFilter

FIXTURE = REPO / "fixtures" / "store" / "format-1"


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    home = tmp_path / "old-home"
    shutil.copytree(FIXTURE, home)
    return home


def _versions(home: Path) -> set[int]:
    docs = [*home.glob("runs/*/run.json"), *home.glob("workers/*.json"), home / "panic.json"]
    return {json.loads(p.read_bytes()).get("schemaVersion", 0) for p in docs}


def test_a_format_1_data_dir_reads_and_migrates_on_write(old_home: Path) -> None:
    assert _versions(old_home) == {1, 0}  # runs and workers say 1; the panic switch had no version
    store = JsonRunStore(old_home, fsync=False)
    assert store.check() == [] and store.quarantined() == []
    runs, cursor = store.list_runs(RunFilter(), 50, None)
    assert cursor is None and sorted(r.status for r in runs) == ["canceled", "completed", "failed"]
    completed = next(store.get_run(r.run_id) for r in runs if r.status == "completed")
    assert completed.steps[0].output.startswith("mock answer") and completed.idempotency_key == "fixture-key-1"
    assert [w.name for w in store.list_workers()] == ["bob-w", "reviewer-1", "writer-1"]
    assert store.get_worker("bob-w").status == "stopped"
    assert not store.get_panic().engaged
    by_worker, _ = store.list_runs(RunFilter(worker_name="writer-1"), 50, None)
    assert len(by_worker) == 2

    store.update_run(completed.run_id, lambda r: r.model_copy(update={"summary": "touched"}))
    raw = (old_home / "runs" / completed.run_id / "run.json").read_bytes()
    assert json.loads(raw)["schemaVersion"] == STORE_SCHEMA_VERSION and b"\n " not in raw  # compact, current
    assert store.get_run(completed.run_id).summary == "touched"


@pytest.mark.anyio
async def test_the_server_serves_a_format_1_data_dir(old_home: Path, server_env: dict[str, str]) -> None:
    env = {**server_env, "MCP_ORCHESTRATOR_HOME": str(old_home)}
    async with Client(stdio_params(env), read_timeout_seconds=60) as client:
        page = await client.call_tool("list_worker_runs", {"agentId": "alice"})
        assert page.structured_content is not None, page.content
        ids = [r["runId"] for r in page.structured_content["runs"]]
        assert len(ids) == 2
        run = await client.call_tool("get_run", {"runId": ids[-1]})
        assert not run.is_error and run.structured_content is not None
        assert run.structured_content["status"] == "completed"


def test_a_newer_document_is_refused_by_name_and_left_in_place(old_home: Path) -> None:
    store = JsonRunStore(old_home, fsync=False)
    (run_id,) = [r.run_id for r in store.list_runs(RunFilter(status="completed"), 5, None)[0]]
    path = old_home / "runs" / run_id / "run.json"
    doc = json.loads(path.read_bytes())
    doc.update(schemaVersion=STORE_SCHEMA_VERSION + 1, aFieldFromTheFuture={"x": 1})
    path.write_text(json.dumps(doc))
    worker = old_home / "workers" / "writer-1.json"
    wdoc = json.loads(worker.read_bytes()) | {"schemaVersion": STORE_SCHEMA_VERSION + 1}  # no new field, still newer
    worker.write_text(json.dumps(wdoc))

    with pytest.raises(NewerDocument, match=rf"newer mcp-orchestrator \(document schema {STORE_SCHEMA_VERSION + 1}"):
        store.get_run(run_id)
    with pytest.raises(NewerDocument):
        store.get_worker("writer-1")
    assert store.check() == [] and store.quarantined() == []
    assert path.exists() and json.loads(path.read_bytes())["aFieldFromTheFuture"] == {"x": 1}
    listed = [r.run_id for r in store.list_runs(RunFilter(), 50, None)[0]]
    assert run_id not in listed and len(listed) == 2  # the others still list
    assert "writer-1" not in [w.name for w in store.list_workers()]
