"""Issue #15: documents changed in place (store format 3, ``store.slots``). A change makes no new file; a write torn
at any byte leaves the version before it or the new one, never a corrupt document; a data directory written by the
release before (``fixtures/store/format-2``) reads and is written in the new format; an older release sees a
format-3 file as a newer document, not as a corrupt one."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.servers import REPO
from test_store_documents import make_run, make_worker

from mcp_orchestrator.contracts import RunRecord
from mcp_orchestrator.errors import NewerDocument, NotFound
from mcp_orchestrator.store import JsonRunStore, RunFilter
from mcp_orchestrator.store.documents import _version_of
from mcp_orchestrator.store.slots import document, parse

FORMAT_2 = REPO / "fixtures" / "store" / "format-2"


@pytest.fixture
def store(data_home: Path) -> JsonRunStore:
    return JsonRunStore(data_home, fsync=True)


def _summary(store: JsonRunStore, run_id: str, text: str) -> None:
    store.update_run(run_id, lambda r: r.model_copy(update={"summary": text}))


def test_a_change_is_written_in_place_and_the_file_stays_one_json_value(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    inode, stamps = path.stat().st_ino, [path.stat().st_mtime_ns]
    for i in range(30):
        _summary(store, run.run_id, f"change {i}")
        stamps.append(path.stat().st_mtime_ns)
        whole = json.loads(path.read_bytes())  # the file parses as one JSON value after every change
        assert whole["schemaVersion"] == 3
    assert path.stat().st_ino == inode  # no new file, no rename
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]  # no lock file, no temporary file
    assert stamps == sorted(set(stamps))  # every change moved the mtime forward
    assert store.get_run(run.run_id).summary == "change 29"
    assert parse(path.read_bytes()).seq == 31  # type: ignore[union-attr]


def test_a_write_torn_at_any_byte_leaves_the_version_before_it_or_the_new_one(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    _summary(store, run.run_id, "one")
    before = path.read_bytes()
    _summary(store, run.run_id, "two")
    after = path.read_bytes()
    changed = [i for i in range(len(after)) if after[i] != before[i]]
    start, end = changed[0], changed[-1] + 1
    seen = set()
    for cut in range(start, end + 1, 7):  # the new slot reached the disk up to ``cut`` (a kill -9 between pages)...
        for torn in (after[:cut] + before[cut:], before[:cut] + after[cut:]):  # ...or from it (write-back order)
            path.write_bytes(torn)
            seen.add(store.get_run(run.run_id).summary)
    assert seen == {"one", "two"} and store.quarantined() == []
    path.write_bytes(after[: (start + end) // 2] + before[(start + end) // 2 :])
    _summary(store, run.run_id, "three")  # the next change goes into the torn slot
    assert store.get_run(run.run_id).summary == "three" and store.check() == []


def test_a_document_whose_two_slots_are_torn_is_quarantined_with_its_reason(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    _summary(store, run.run_id, "one")
    path = store.home / "runs" / run.run_id / "run.json"
    path.write_bytes(path.read_bytes().replace(b'"seq":"0', b'"seq":"x'))
    with pytest.raises(NotFound):
        store.get_run(run.run_id)
    ((_, reason),) = store.quarantined()
    assert "does not parse as RunRecord" in reason and "neither of its two slots checks out" in reason


def test_the_mtime_moves_forward_even_when_the_clock_does_not(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    ahead = time.time_ns() + 3600 * 10**9  # as a coarse clock would: the next write gets no later stamp
    os.utime(path, ns=(ahead, ahead))
    assert store.list_runs(RunFilter(), 5, None)[0][0].task == "task 1"  # the listing caches it by (mtime, size)
    size = path.stat().st_size
    store.update_run(run.run_id, lambda r: r.model_copy(update={"task": "after"}))
    assert path.stat().st_mtime_ns == ahead + 1 and path.stat().st_size == size
    assert store.list_runs(RunFilter(), 5, None)[0][0].task == "after"


def test_a_document_that_outgrows_its_slots_is_rewritten_whole_and_keeps_its_sequence(store: JsonRunStore) -> None:
    worker = store.put_worker(make_worker("w1"), create=True)
    path = store.home / "workers" / "w1.json"
    store.update_worker("w1", lambda w: w.model_copy(update={"session_id": "s" * 20_000}))
    found = parse(path.read_bytes())
    assert found is not None and found.seq == 2 and found.size > 20_000
    assert store.get_worker("w1").session_id == "s" * 20_000 and worker.name == "w1"


def test_a_format_2_data_dir_reads_and_is_written_in_format_3(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(FORMAT_2, home)
    docs = [*home.glob("runs/*/run.json"), *home.glob("workers/*.json"), home / "panic.json"]
    assert {json.loads(p.read_bytes())["schemaVersion"] for p in docs} == {2}
    assert all(parse(p.read_bytes()) is None for p in docs)  # plain documents, as that release wrote them
    store = JsonRunStore(home, fsync=False)
    assert store.check() == [] and store.quarantined() == []
    runs, _ = store.list_runs(RunFilter(), 50, None)
    assert sorted(r.status for r in runs) == ["canceled", "completed", "failed"]
    completed = next(store.get_run(r.run_id) for r in runs if r.status == "completed")
    assert completed.steps[0].output.startswith("mock answer") and completed.idempotency_key == "fixture-key-1"
    assert [w.name for w in store.list_workers()] == ["bob-w", "reviewer-1", "writer-1"]
    assert not store.get_panic().engaged

    _summary(store, completed.run_id, "touched")
    store.update_worker("writer-1", lambda w: w.model_copy(update={"role": "reviewer"}))
    for path in (home / "runs" / completed.run_id / "run.json", home / "workers" / "writer-1.json"):
        found = parse(path.read_bytes())
        assert found is not None and json.loads(found.doc)["schemaVersion"] == 3
    assert store.get_run(completed.run_id).summary == "touched" and store.get_worker("writer-1").role == "reviewer"
    _summary(store, completed.run_id, "touched again")  # now in place
    assert store.get_run(completed.run_id).summary == "touched again" and store.check() == []


def test_an_older_release_sees_a_format_3_document_as_newer_not_corrupt(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    _summary(store, run.run_id, "one")
    raw = (store.home / "runs" / run.run_id / "run.json").read_bytes()
    # What the format-2 release does with it (store/documents.py there): the models do not parse the file, so it
    # reads the file's schemaVersion, and one above its own (2) is NewerDocument, never quarantine.
    with pytest.raises(ValidationError):
        RunRecord.model_validate_json(raw)
    assert _version_of(raw) == 3
    assert RunRecord.model_validate_json(document(raw)).summary == "one"


def test_a_document_from_a_later_format_is_refused_by_name_and_left_in_place(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    later = path.read_bytes().replace(b'{"schemaVersion":3,', b'{"schemaVersion":4,', 1)
    path.write_bytes(later)
    with pytest.raises(NewerDocument):
        store.get_run(run.run_id)
    assert store.check() == [] and store.quarantined() == [] and path.read_bytes() == later
