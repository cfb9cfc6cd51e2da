"""JsonRunStore: atomic writes, newest-first pagination, idempotency, quarantine, the start-up check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from mcp_orchestrator.contracts import PanicState, RunRecord, WorkerRecord, utcnow
from mcp_orchestrator.errors import Conflict, NotFound
from mcp_orchestrator.store import JsonRunStore, RunFilter
from mcp_orchestrator.store._files import atomic_write
from mcp_orchestrator.store.slots import document


@pytest.fixture
def store(data_home: Path) -> JsonRunStore:
    return JsonRunStore(data_home, fsync=False)


def make_run(
    number: int,
    *,
    agent: str = "agent-a",
    workers: tuple[str, ...] = ("w1",),
    status: str = "completed",
    key: str | None = None,
) -> RunRecord:
    """A run whose id sorts by ``number`` (ids are time-ordered in production too)."""
    return RunRecord(
        run_id=f"run_{number:012x}{number:08x}",
        status=status,  # type: ignore[arg-type]
        strategy="single_worker",
        task=f"task {number}",
        agent_id=agent,
        created_at=utcnow() + timedelta(milliseconds=number),
        workers=list(workers),
        idempotency_key=key,
    )


def make_worker(name: str, owner: str = "agent-a", status: str = "idle") -> WorkerRecord:
    return WorkerRecord(
        name=name,
        model="mock",
        runtime_mode="mock",
        workdir="/nowhere",
        owner_agent_id=owner,
        created_at=utcnow(),
        status=status,  # type: ignore[arg-type]
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_readers_see_old_or_new_never_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    old, new = b'{"v": "' + b"a" * 200_000 + b'"}', b'{"v": "' + b"b" * 150_000 + b'"}'
    atomic_write(path, old, fsync=False)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            atomic_write(path, new if i % 2 == 0 else old, fsync=False)
    finally:
        stop.set()
        reader.join()
    assert seen <= {old, new}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_failed_atomic_write_keeps_the_old_content_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    target.mkdir()  # renaming a file over a directory fails after the temp file was written
    (target / "inside").write_text("kept")
    with pytest.raises(IsADirectoryError):
        atomic_write(target, b"{}", fsync=True)
    assert (target / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_update_run_that_outgrows_its_slots_writes_through_a_temp_file_and_keeps_the_document_valid(
    store: JsonRunStore,
) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    before = path.stat().st_ino
    store.update_run(run.run_id, lambda r: r.model_copy(update={"summary": "x" * 10_000}))
    raw = path.read_bytes()
    assert path.stat().st_ino != before  # rewritten whole, with larger slots
    assert json.loads(raw)["schemaVersion"] == 3 and json.loads(document(raw))["summary"] == "x" * 10_000
    assert store.get_run(run.run_id).summary == "x" * 10_000
    leftovers = [p for p in (store.home / "runs" / run.run_id).iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_update_run_that_changes_nothing_does_not_rewrite(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    path = store.home / "runs" / run.run_id / "run.json"
    before, raw = path.stat(), path.read_bytes()
    store.update_run(run.run_id, lambda r: r)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, path.read_bytes()) == (before.st_ino, before.st_mtime_ns, raw)


def test_terminal_update_drops_the_active_marker(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1, status="running"))
    assert store.active_run_ids() == [run.run_id]
    store.update_run(run.run_id, lambda r: r.model_copy(update={"status": "completed"}))
    assert store.active_run_ids() == []


def test_update_of_a_missing_run_is_not_found(store: JsonRunStore) -> None:
    with pytest.raises(NotFound):
        store.update_run("run_00000000000000000000", lambda r: r)


# ---- listing -----------------------------------------------------------------------------------


def _fill(store: JsonRunStore) -> list[RunRecord]:
    runs = []
    for n in range(1, 41):
        runs.append(
            store.create_run(
                make_run(
                    n,
                    agent="agent-a" if n % 2 else "agent-b",
                    workers=("w1",) if n % 3 else ("w1", "w2"),
                    status="completed" if n % 4 else "failed",
                )
            )
        )
    return runs


def _pages(store: JsonRunStore, flt: RunFilter, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page, cursor = store.list_runs(flt, limit, cursor)
        pages.append([s.run_id for s in page])
        if cursor is None:
            return pages


@pytest.mark.parametrize("limit", [1, 7, 10, 40, 200])
def test_list_runs_pages_newest_first_without_gaps_or_repeats(store: JsonRunStore, limit: int) -> None:
    runs = _fill(store)
    pages = _pages(store, RunFilter(), limit)
    flat = [i for p in pages for i in p]
    assert flat == sorted((r.run_id for r in runs), reverse=True)
    assert all(len(p) == limit for p in pages[:-1])
    assert pages[-1]  # no empty trailing page: a cursor is only given when more runs follow


@pytest.mark.parametrize(
    ("flt", "keep"),
    [
        (RunFilter(worker_name="w2"), lambda r: "w2" in r.workers),
        (RunFilter(worker_name="w1"), lambda r: True),
        (RunFilter(agent_id="agent-b"), lambda r: r.agent_id == "agent-b"),
        (RunFilter(status="failed"), lambda r: r.status == "failed"),
        (RunFilter(strategy="single_worker"), lambda r: True),
        (RunFilter(worker_name="w2", agent_id="agent-a", status="completed"), None),
        (RunFilter(worker_name="nobody"), lambda r: False),
        (RunFilter(agent_id="nobody"), lambda r: False),
    ],
)
def test_list_runs_filters(store: JsonRunStore, flt: RunFilter, keep: object) -> None:
    runs = _fill(store)
    if keep is None:

        def keep(r: RunRecord) -> bool:
            return "w2" in r.workers and r.agent_id == "agent-a" and r.status == "completed"

    expected = sorted((r.run_id for r in runs if keep(r)), reverse=True)  # type: ignore[operator]
    assert [i for p in _pages(store, flt, 3) for i in p] == expected


def test_listing_sees_runs_created_after_it_was_cached(store: JsonRunStore) -> None:
    first = store.create_run(make_run(1))
    assert [s.run_id for s in store.list_runs(RunFilter(), 10, None)[0]] == [first.run_id]
    later = [store.create_run(make_run(n)) for n in range(2, 30)]
    for run in later:
        store.update_run(run.run_id, lambda r: r.model_copy(update={"status": "failed"}))
        page, _ = store.list_runs(RunFilter(), 100, None)
        assert page[0].run_id == later[-1].run_id
    statuses = {s.run_id: s.status for s in store.list_runs(RunFilter(), 100, None)[0]}
    assert statuses == {first.run_id: "completed"} | {r.run_id: "failed" for r in later}


def test_a_second_store_on_the_same_directory_sees_every_change(store: JsonRunStore) -> None:
    other = JsonRunStore(store.home, fsync=False)
    run = store.create_run(make_run(1, status="running"))
    assert other.list_runs(RunFilter(), 5, None)[0][0].status == "running"
    store.update_run(run.run_id, lambda r: r.model_copy(update={"status": "completed"}))
    assert other.list_runs(RunFilter(), 5, None)[0][0].status == "completed"


# ---- idempotency -------------------------------------------------------------------------------


def test_same_agent_and_key_return_the_first_run(store: JsonRunStore) -> None:
    first = store.create_run(make_run(1, key="k"))
    again = store.create_run(make_run(2, key="k"))
    assert again.run_id == first.run_id
    assert [s.run_id for s in store.list_runs(RunFilter(), 10, None)[0]] == [first.run_id]


def test_the_key_is_per_agent(store: JsonRunStore) -> None:
    a = store.create_run(make_run(1, agent="agent-a", key="k"))
    b = store.create_run(make_run(2, agent="agent-b", key="k"))
    assert a.run_id != b.run_id


def test_agent_and_key_cannot_be_confused_by_concatenation(store: JsonRunStore) -> None:
    a = store.create_run(make_run(1, agent="ab", key="c"))
    b = store.create_run(make_run(2, agent="a", key="bc"))
    assert a.run_id != b.run_id


def test_unusable_idempotency_record_is_quarantined_and_a_new_run_made(store: JsonRunStore) -> None:
    first = store.create_run(make_run(1, key="k"))
    (record,) = (store.home / "idempotency").glob("*.json")
    record.write_text('{"runId": ')
    again = store.create_run(make_run(2, key="k"))
    assert again.run_id != first.run_id
    assert json.loads(record.read_text()) == {"runId": again.run_id}
    assert any("idempotency" in name for name, _ in store.quarantined())


def test_idempotency_record_pointing_to_a_deleted_run_is_replaced(store: JsonRunStore) -> None:
    first = store.create_run(make_run(1, key="k"))
    store.remove_run_files(first.run_id)
    again = store.create_run(make_run(2, key="k"))
    assert again.run_id != first.run_id
    assert store.get_run(again.run_id).run_id == again.run_id


# ---- quarantine --------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe", b'{"runId": "run_', b"[]", b'{"unexpected": 1}'])
def test_corrupt_run_is_quarantined_and_reported_missing(store: JsonRunStore, garbage: bytes) -> None:
    good = store.create_run(make_run(1))
    bad = store.create_run(make_run(2))
    (store.home / "runs" / bad.run_id / "run.json").write_bytes(garbage)
    with pytest.raises(NotFound):
        store.get_run(bad.run_id)
    assert store.get_run(good.run_id) == good
    ((name, reason),) = store.quarantined()
    assert name.endswith(f"runs__{bad.run_id}__run.json")
    assert "RunRecord" in reason
    assert (store.home / "quarantine" / name).read_bytes() == garbage
    assert (store.home / "quarantine" / f"{name}.reason.txt").read_text().strip() == reason
    assert [s.run_id for s in store.list_runs(RunFilter(), 10, None)[0]] == [good.run_id]


def test_corrupt_worker_is_quarantined_and_the_name_freed(store: JsonRunStore) -> None:
    store.put_worker(make_worker("bad"))
    store.put_worker(make_worker("good"))
    (store.home / "workers" / "bad.json").write_text('{"name": "bad", ')
    assert [w.name for w in store.list_workers()] == ["good"]
    assert store.put_worker(make_worker("bad", owner="agent-z"), create=True).owner_agent_id == "agent-z"


def test_create_refuses_a_live_name_and_a_stopped_name_of_another_agent(store: JsonRunStore) -> None:
    store.put_worker(make_worker("w"))
    with pytest.raises(Conflict):
        store.put_worker(make_worker("w"), create=True)
    store.update_worker("w", lambda w: w.model_copy(update={"status": "stopped"}))
    with pytest.raises(Conflict):
        store.put_worker(make_worker("w", owner="agent-z"), create=True)
    assert store.put_worker(make_worker("w"), create=True).status == "idle"


def test_corrupt_panic_document_fails_closed(store: JsonRunStore) -> None:
    assert store.get_panic().engaged is False
    (store.home / "panic.json").write_text("{nope")
    state = store.get_panic()
    assert state.engaged is True
    assert store.quarantined()
    store.set_panic(PanicState(engaged=False))
    assert store.get_panic().engaged is False


def test_check_quarantines_corrupt_documents_and_abandoned_temp_files(store: JsonRunStore) -> None:
    runs = [store.create_run(make_run(n)) for n in range(1, 4)]
    store.put_worker(make_worker("ok"))
    store.put_worker(make_worker("broken"))
    (store.home / "workers" / "broken.json").write_bytes(b"\xff")
    (store.home / "runs" / runs[0].run_id / "run.json").write_text("{}")
    gone = dead_pid()
    dead_tmp = store.home / "runs" / runs[1].run_id / f"run.json.tmp-{gone}-abcd"
    dead_tmp.write_text('{"half')
    worker_tmp = store.home / "workers" / f"ok.json.tmp-{gone}-0123abcd"
    worker_tmp.write_text("{")
    live_tmp = store.home / "runs" / runs[2].run_id / f"run.json.tmp-{os.getpid()}-beef"
    live_tmp.write_text("{")

    moved = store.check()
    moved_names = sorted(Path(p).name for p, _ in moved)
    assert moved_names == sorted(["broken.json", "run.json", dead_tmp.name, worker_tmp.name])
    assert live_tmp.exists()  # a write in flight in a live process is never touched
    assert len(store.quarantined()) == 4
    assert store.check() == []  # idempotent
    assert [w.name for w in store.list_workers()] == ["ok"]


def test_check_never_quarantines_documents_whose_names_look_like_temp_files(store: JsonRunStore) -> None:
    """A worker may be called ``w.json.tmp-<n>-x``: its document and lock are not half-written files."""
    gone = dead_pid()
    for name in (f"w.json.tmp-{gone}-x", f"w.json.tmp-{gone}-abcd", "w.json.tmp-1-beef"):
        store.put_worker(make_worker(name))
    assert store.check() == []
    assert len(store.list_workers()) == 3
    assert store.quarantined() == []


def test_old_temp_files_of_a_live_pid_are_swept_after_an_hour(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1))
    tmp = store.home / "runs" / run.run_id / f"run.json.tmp-{os.getpid()}-abcd"
    tmp.write_text("{")
    os.utime(tmp, (0, 0))
    assert [Path(p).name for p, _ in store.check()] == [tmp.name]


def test_quarantine_never_overwrites_an_earlier_quarantined_copy(store: JsonRunStore) -> None:
    run = store.create_run(make_run(1))
    path = store.home / "runs" / run.run_id / "run.json"
    for garbage in (b"one", b"two", b"three"):
        path.write_bytes(garbage)
        with pytest.raises(NotFound):
            store.get_run(run.run_id)
    contents = sorted((store.home / "quarantine" / n).read_bytes() for n, _ in store.quarantined())
    assert contents == [b"one", b"three", b"two"]
