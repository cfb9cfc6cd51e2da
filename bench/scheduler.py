"""The scheduler under load (issue #5): accept latency, end-to-end throughput, interactive wait under batch.

(a) ``accept``: ``dispatch_task`` with ``waitSeconds`` 0 through the stdio server while 1,000 runs are
    queued (``MAX_RUNNING=1`` and a long run holding the slot, so every accepted run stays queued):
    p50/p95/p99 at the client (goal p95 <= 3 ms, issue #15), and the same call in-process (``Orchestrator.dispatch``)
    at the same depth, to separate the transport from the service; ``fsync_on_executor`` is the same over the
    default set-up, ``serve`` handing each run to the data directory's executor process.
(b) ``throughput``: mock runs (no delay, 32 workers, default caps) from the first dispatch to the last
    completion, in-process through the service API and through the stdio server (16 callers in flight,
    ``waitSeconds`` 0), with fsync on and off (``MCP_ORCHESTRATOR_FSYNC=0``); in-process also on tmpfs
    (``/dev/shm``) to tell the code's cost from the disk's. Goal >= 300 runs/s. The stdio figures execute the runs
    in ``serve`` itself (inline) as before issue 13; ``mcp_stdio_executor_fsync_on`` over the default set-up (the
    server's CPU is then the front end's and the executor's together).
(c) ``interactive_wait``: interactive runs arriving every 20 ms while a backlog of batch runs saturates
    the caps (``max_running`` 4, ``mock`` backend cap 2): their queue wait p50/p95/p99 vs the batch runs'.

``costs`` counts, per run, the store operations and file-system calls of an in-process run (document
writes, file creations, renames, locks, thread hops); ``disk`` times one file creation on the data
directory's file system and on tmpfs. ``--profile`` adds a cProfile of the in-process run with the store
called inline (no thread hops, so the store's own time is visible), grouped by where the time goes.

Prints one JSON object.

    python bench/scheduler.py [--queued 1000] [--samples 300] [--runs 2000] [--mcp-runs 1000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from _common import children_running, server_env, stop_executor
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcp_orchestrator.config import Settings  # noqa: E402
from mcp_orchestrator.service import Orchestrator  # noqa: E402
from mcp_orchestrator.service.executor import ExecutorPaths  # noqa: E402

AGENT = "bench"
WORKERS = 32
BIG_QUEUES = {"interactive": 1_000_000, "batch": 1_000_000}


def pct(samples: list[float], scale: float = 1000.0) -> dict[str, float | int]:
    """p50/p95/p99/mean/max of ``samples`` (seconds), in ms by default."""
    s = sorted(samples)

    def pick(q: float) -> float:
        return s[min(int(q * len(s)), len(s) - 1)]

    return {
        "p50": round(pick(0.50) * scale, 3),
        "p95": round(pick(0.95) * scale, 3),
        "p99": round(pick(0.99) * scale, 3),
        "mean": round(statistics.fmean(s) * scale, 3),
        "max": round(s[-1] * scale, 3),
        "n": len(s),
    }


@contextmanager
def data_dirs(base: str | None) -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        home.mkdir()
        (root / "work").mkdir(parents=True)
        yield home, root


def settings(home: Path, root: Path, *, fsync: bool, **knobs: Any) -> Settings:
    return Settings(home=home, roots=(root,), fsync=fsync, **{"queue_limits": BIG_QUEUES, **knobs})


def stdio(home: Path, root: Path, executor: str = "inline", **env: str) -> StdioServerParameters:
    full = server_env(home, root)
    # ``inline``: the runs execute in the server process itself, so its CPU time is the whole cost of a run, as in
    # the figures before the executor existed (issue 13). ``daemon`` (the default a user runs): ``serve`` accepts
    # and hands each run to the data directory's executor process; bench/executor.py compares the two modes.
    full["MCP_ORCHESTRATOR_EXECUTOR"] = executor
    full.update({f"MCP_ORCHESTRATOR_{k}": v for k, v in env.items()})
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve"], env=full, cwd=str(REPO)
    )


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def until(check: Callable[[], Any], seconds: float, interval: float = 0.02) -> None:
    with anyio.fail_after(seconds):
        while True:
            if await check():
                return
            await anyio.sleep(interval)


# ---- (a) accept latency -------------------------------------------------------------------------


async def accept_latency(
    queued: int, samples: int, fsync: bool, base: str | None, executor: str = "inline"
) -> dict[str, Any]:
    with data_dirs(base) as (home, root):
        knobs = {"MAX_RUNNING": "1", "QUEUE_INTERACTIVE": "1000000", "FSYNC": "1" if fsync else "0"}
        async with Client(stdio(home, root, executor, **knobs)) as client:
            await call(client, "spawn_worker", agentId=AGENT, name="w", model="mock")
            await call(client, "dispatch_task", agentId=AGENT, task="[[mock delay=3600]]", waitSeconds=0)

            async def timed(i: int) -> float:
                start = time.perf_counter()
                run = await call(client, "dispatch_task", agentId=AGENT, task=f"queued {i}", waitSeconds=0)
                elapsed = time.perf_counter() - start
                assert run["status"] == "accepted"
                return elapsed

            filling = [await timed(i) for i in range(queued)]
            depth = (await call(client, "scheduler"))["depth"]["interactive"]
            assert depth == queued, depth
            at_depth = [await timed(queued + i) for i in range(samples)]
        out = {"at_depth": pct(at_depth), "while_filling_0_to_depth": pct(filling), "depth": queued}
        if executor == "daemon":
            stop_executor(home, root)
            return out

    # The same dispatch without the transport, at the same depth.
    with data_dirs(base) as (home, root):
        orch = Orchestrator(settings(home, root, fsync=fsync, max_running=1))
        async with orch.running():
            await orch.spawn_worker(AGENT, "w", "mock", workdir=str(root / "work"))
            await orch.dispatch(AGENT, "[[mock delay=3600]]")
            for i in range(queued):
                await orch.dispatch(AGENT, f"queued {i}")
            inproc = []
            for i in range(samples):
                start = time.perf_counter()
                await orch.dispatch(AGENT, f"queued {queued + i}")
                inproc.append(time.perf_counter() - start)
            for run_id in orch.engine.running() | orch.engine.queued():
                orch.engine.cancel(run_id)
        out["in_process_at_depth"] = pct(inproc)
    return out


# ---- (b) throughput -----------------------------------------------------------------------------


def _cpu_seconds(pid: int | None = None) -> tuple[float, float]:
    """(user, sys) CPU seconds of this process (all its threads) or of ``pid``."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime, r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_sum(pids: list[int]) -> tuple[float, float]:
    """(user, sys) CPU seconds of the processes ``pids`` together."""
    times = [_cpu_seconds(p) for p in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def _cpu_per_run(before: tuple[float, float], after: tuple[float, float], runs: int) -> dict[str, float]:
    user, sys_ = (after[0] - before[0]) / runs * 1000, (after[1] - before[1]) / runs * 1000
    return {"user": round(user, 2), "sys": round(sys_, 2), "total": round(user + sys_, 2)}


@contextmanager
def raw_flock() -> Iterator[None]:
    """What-if (proposal 1): the store's per-document lock as a bare ``flock`` on the same ``<doc>.lock`` file
    (what filelock's UnixFileLock takes too, without its bookkeeping), patched in for an in-process run."""
    import fcntl

    from mcp_orchestrator.store import json_store

    @contextmanager
    def lock(path: Path) -> Iterator[None]:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    real = getattr(json_store, "doc_lock")  # noqa: B009 - patched, not part of its API
    setattr(json_store, "doc_lock", lock)  # noqa: B010
    try:
        yield
    finally:
        setattr(json_store, "doc_lock", real)  # noqa: B010


async def _spawn_workers(orch: Orchestrator, root: Path) -> list[str]:
    names = [f"w{i}" for i in range(WORKERS)]
    for name in names:
        await orch.spawn_worker(AGENT, name, "mock", workdir=str(root / "work"))
    return names


async def throughput_in_process(runs: int, fsync: bool, base: str | None) -> dict[str, Any]:
    with data_dirs(base) as (home, root):
        orch = Orchestrator(settings(home, root, fsync=fsync))
        async with orch.running():
            names = await _spawn_workers(orch, root)
            cpu = _cpu_seconds()
            start = time.perf_counter()
            ids = [(await orch.dispatch(AGENT, f"task {i}", workers=[names[i % WORKERS]])).run_id for i in range(runs)]
            dispatched = time.perf_counter() - start

            async def drained() -> bool:
                return not (orch.engine.running() or orch.engine.queued())

            await until(drained, 600, 0.005)
            elapsed = time.perf_counter() - start
            cpu_ms = _cpu_per_run(cpu, _cpu_seconds(), runs)
            statuses = Counter([(await orch.get_run(i)).status for i in ids])
    assert statuses == {"completed": runs}, statuses
    return {
        "runs_per_second": round(runs / elapsed, 1),
        "dispatch_phase_per_second": round(runs / dispatched, 1),
        "cpu_ms_per_run": cpu_ms,
        "ms_per_run_in_floors": round(elapsed / runs / floor_seconds(base), 2),  # wall per run / one durable write
    }


async def throughput_mcp(
    runs: int, fsync: bool, base: str | None, callers: int = 16, executor: str = "inline"
) -> dict[str, Any]:
    with data_dirs(base) as (home, root):
        env = {"FSYNC": "1" if fsync else "0", "QUEUE_INTERACTIVE": "1000000"}
        async with Client(stdio(home, root, executor, **env)) as client:
            names = [f"w{i}" for i in range(WORKERS)]
            for name in names:
                await call(client, "spawn_worker", agentId=AGENT, name=name, model="mock")
            (pid,) = children_running("mcp_orchestrator")
            pids = [pid]
            if executor == "daemon":  # the server's CPU is the front end's and its executor's
                await call(client, "dispatch_task", agentId=AGENT, task="warm-up", workers=[names[0]], waitSeconds=30)
                pids.append(int((ExecutorPaths(home).read_info() or {})["pid"]))
            todo = iter(range(runs))
            cpu_server, cpu_client = _cpu_sum(pids), _cpu_seconds()
            start = time.perf_counter()

            async def caller() -> None:
                for i in todo:
                    await call(client, "dispatch_task", agentId=AGENT, task=f"task {i}", workers=[names[i % WORKERS]],
                               waitSeconds=0)  # fmt: skip

            async with anyio.create_task_group() as tg:
                for _ in range(callers):
                    tg.start_soon(caller)
            dispatched = time.perf_counter() - start

            async def drained() -> bool:
                return bool((await call(client, "scheduler"))["unfinishedRuns"] == 0)

            await until(drained, 600, 0.01)
            elapsed = time.perf_counter() - start
            server_ms = _cpu_per_run(cpu_server, _cpu_sum(pids), runs)
            client_ms = _cpu_per_run(cpu_client, _cpu_seconds(), runs)
            done = await call(client, "list_worker_runs", status="completed", limit=1)
            assert done["runs"], "no run completed"
        if executor == "daemon":
            stop_executor(home, root)
    return {
        "executor": executor,
        "runs_per_second": round(runs / elapsed, 1),
        "dispatch_phase_per_second": round(runs / dispatched, 1),
        "server_cpu_ms_per_run": server_ms,
        "client_cpu_ms_per_run": client_ms,
        "callers_in_flight": callers,
    }


# ---- (c) interactive wait while batch saturates the caps ----------------------------------------


async def _interactive_wait(
    base: str | None, max_running: int, batch_runs: int, interactive_runs: int
) -> dict[str, Any]:
    with data_dirs(base) as (home, root):
        knobs = {"max_running": max_running, "backend_caps": {"mock": 2}}
        orch = Orchestrator(settings(home, root, fsync=False, **knobs))
        async with orch.running():
            workdir = str(root / "work")
            for i in range(8):
                await orch.spawn_worker("batch", f"b{i}", "mock", workdir=workdir)
                await orch.spawn_worker("inter", f"i{i}", "mock", workdir=workdir)
            batch = [
                (await orch.dispatch("batch", f"b {i} [[mock delay=0.2]]", workers=[f"b{i % 8}"], priority="batch"))
                for i in range(batch_runs)
            ]

            async def saturated() -> bool:
                return bool(orch.engine.snapshot()["running"] == max_running)

            await until(saturated, 30)
            inter = []
            for i in range(interactive_runs):
                run = await orch.dispatch("inter", f"i {i} [[mock delay=0.02]]", workers=[f"i{i % 8}"])
                inter.append(run)
                await anyio.sleep(0.25)
            for run in inter + batch:
                await orch.wait_run(run.run_id, 120)
            inter_runs = [await orch.get_run(r.run_id) for r in inter]
            batch_done = [await orch.get_run(r.run_id) for r in batch]
    last = inter_runs[-1].started_at
    assert last is not None
    backlog = len([r for r in batch_done if r.started_at is not None and r.started_at > last])
    # Until the step really ran: its end minus the 20 ms it sleeps (includes the wait for a backend slot).
    effective = [((r.steps[0].ended_at or r.created_at) - r.created_at).total_seconds() - 0.02 for r in inter_runs]
    return {
        "interactive_queue_wait": pct([(r.queue_wait_ms or 0) / 1000 for r in inter_runs]),
        "interactive_wait_until_executed": pct(effective),
        "batch_queue_wait": pct([(r.queue_wait_ms or 0) / 1000 for r in batch_done]),
        "batch_runs_started_after_the_last_interactive": backlog,
    }


async def interactive_wait(base: str | None, batch_runs: int = 160, interactive_runs: int = 40) -> dict[str, Any]:
    """Interactive runs (20 ms steps) every 250 ms while a batch backlog (200 ms steps) saturates the mock cap
    (2): once with max_running 2 (the scheduler's cap binds) and once with max_running 4 (batch runs hold
    scheduler slots while they wait for a backend slot, and an interactive run waits behind them there)."""
    return {
        "setup": f"{batch_runs} batch runs queued first (200 ms steps), then {interactive_runs} interactive runs "
        "every 250 ms (20 ms steps); mock backend cap 2; capacity 10 runs/s, interactive load 4 runs/s",
        "max_running_2": await _interactive_wait(base, 2, batch_runs, interactive_runs),
        "max_running_4": await _interactive_wait(base, 4, batch_runs, interactive_runs),
    }


# ---- costs per run, disk, profile -----------------------------------------------------------------


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count file creations, mkdirs, renames, links and unlinks made through ``os`` and ``io.open`` while
    inside. ``files_created`` counts the opens that made a new file (a new inode, the costly part on ext4);
    ``open_create`` every open that may create (a lock file or the event log opened again counts there)."""
    import io

    counts: Counter[str] = Counter()
    names = ("open", "mkdir", "replace", "rename", "unlink", "fsync", "fdatasync", "pwrite", "link")
    real = {name: getattr(os, name) for name in names}
    real_io_open = io.open

    def wrap(name: str) -> Callable[..., Any]:
        fn = real[name]

        def counted(*args: Any, **kwargs: Any) -> Any:
            if name == "open":
                flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
                counts["open_create" if flags & os.O_CREAT else "open_read"] += 1
                if flags & os.O_CREAT and not os.path.exists(args[0]):
                    counts["files_created"] += 1
            else:
                counts[name] += 1
            return fn(*args, **kwargs)

        return counted

    def io_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and any(c in mode for c in "wax") and not os.path.exists(file):
            counts["files_created"] += 1
        return real_io_open(file, mode, *args, **kwargs)

    for name in real:
        setattr(os, name, wrap(name))
    io.open = io_open  # type: ignore[assignment]
    try:
        yield counts
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        io.open = real_io_open  # type: ignore[assignment]


async def costs_per_run(base: str | None, runs: int = 200) -> dict[str, Any]:
    with data_dirs(base) as (home, root):
        orch = Orchestrator(settings(home, root, fsync=True))
        ops: Counter[str] = Counter()
        store = orch.store
        for method in ("create_run", "update_run", "get_run", "update_worker", "get_worker", "owns"):
            fn = getattr(store, method)

            def counted(*args: Any, _fn: Any = fn, _name: str = method, **kwargs: Any) -> Any:
                ops[_name] += 1
                return _fn(*args, **kwargs)

            setattr(store, method, counted)
        real_io = orch.io

        async def io(fn: Any, *args: Any, **kwargs: Any) -> Any:
            ops["thread_hops"] += 1
            return await real_io(fn, *args, **kwargs)

        orch.io = io  # type: ignore[method-assign]
        async with orch.running():
            names = await _spawn_workers(orch, root)
            ops.clear()

            async def drained() -> bool:
                return not (orch.engine.running() or orch.engine.queued())

            with counting() as fs:
                for i in range(runs):
                    await orch.dispatch(AGENT, f"task {i}", workers=[names[i % WORKERS]])
                await until(drained, 300, 0.005)
    per = {k: round(v / runs, 2) for k, v in sorted(ops.items())}
    per_fs = {k: round(v / runs, 2) for k, v in sorted(fs.items())}
    per["document_writes"] = round((ops["create_run"] + ops["update_run"] + ops["update_worker"]) / runs, 2)
    per["file_locks"] = round((ops["update_run"] + ops["update_worker"]) / runs, 2)
    return {"store_calls_per_run": per, "os_calls_per_run": per_fs, "runs": runs}


def disk_costs(base: str | None) -> dict[str, float]:
    """µs per file creation (create, write 2 KB, close, rename) and per mkdir on ``base`` and on tmpfs."""
    out: dict[str, float] = {}
    for label, where in (("data_dir", base), ("tmpfs", "/dev/shm")):
        if where == "/dev/shm" and not os.path.isdir(where):
            continue
        with tempfile.TemporaryDirectory(dir=where) as d:
            n = 300
            start = time.perf_counter()
            for i in range(n):
                fd = os.open(f"{d}/t{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, b"x" * 2048)
                os.close(fd)
                os.replace(f"{d}/t{i}", f"{d}/f{i}")
            out[f"{label}_create_write_rename_us"] = round((time.perf_counter() - start) / n * 1e6, 1)
            start = time.perf_counter()
            for i in range(n):
                os.mkdir(f"{d}/d{i}")
            out[f"{label}_mkdir_us"] = round((time.perf_counter() - start) / n * 1e6, 1)
    out["floor_ms"] = round(floor_seconds(base) * 1000, 3)
    out["floor_in_place_ms"] = round(floor_seconds(base, in_place=True) * 1000, 3)
    return out


def floor_seconds(base: str | None, n: int = 200, *, in_place: bool = False) -> float:
    """The disk's floor for one durable change: the median of one fsync'd atomic write of a run-sized
    document (a completed one-step mock run, compact JSON), through the store's own ``atomic_write``;
    ``in_place``: one change of that document in its slot file (``store.slots``: pwrite, fdatasync)."""
    from mcp_orchestrator.store import slots
    from mcp_orchestrator.store._files import atomic_write

    with data_dirs(base) as (home, _):
        doc = (Path(__file__).resolve().parents[1] / "fixtures" / "store" / "format-1" / "runs").glob("*/run.json")
        data = json.dumps(json.loads(next(iter(sorted(doc))).read_bytes())).encode()
        samples = []
        for i in range(n):
            path = home / f"doc{i % 8}.json"
            start = time.perf_counter()
            if in_place:
                slots.put(path, data, fsync=True)
            else:
                atomic_write(path, data, fsync=True)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples[8:] if in_place else samples)  # in place: after each file's creation


CATEGORIES = (
    ("filelock", ("filelock/",)),
    ("pathlib", ("pathlib.py",)),
    ("pydantic", ("pydantic", "model_copy", "model_dump", "validate_json", "to_json")),
    ("os_file_calls", ("posix.", "io.open", "_io.")),
    ("anyio_asyncio", ("anyio/", "asyncio/")),
    ("mcp_orchestrator", ("mcp_orchestrator/",)),
)


async def profile(base: str | None, runs: int) -> dict[str, Any]:
    """cProfile of in-process runs with the store called inline (one thread: its time is visible)."""
    with data_dirs(base) as (home, root):
        orch = Orchestrator(settings(home, root, fsync=False))

        async def inline(fn: Any, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        orch.io = inline  # type: ignore[method-assign]
        async with orch.running():
            names = await _spawn_workers(orch, root)
            prof = cProfile.Profile()

            async def drained() -> bool:
                return not (orch.engine.running() or orch.engine.queued())

            prof.enable()
            start = time.perf_counter()
            for i in range(runs):
                await orch.dispatch(AGENT, f"task {i}", workers=[names[i % WORKERS]])
            await until(drained, 300, 0.005)
            elapsed = time.perf_counter() - start
            prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    by_cat: Counter[str] = Counter()
    top = []
    for (file, line, fn), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{line}({fn})"
        cat = next((c for c, keys in CATEGORIES if any(k in where for k in keys)), "other")
        by_cat[cat] += tottime
        top.append((tottime, ncalls, cumtime, where))
    top.sort(reverse=True)
    return {
        "runs": runs,
        "runs_per_second_under_profiler": round(runs / elapsed, 1),
        "profiled_seconds": round(total, 3),
        "self_time_share": {c: round(t / total, 3) for c, t in by_cat.most_common()},
        "top_self_time": [
            {"fn": w.replace(str(REPO) + "/", ""), "calls": n, "self_s": round(t, 3), "cum_s": round(c, 3)}
            for t, n, c, w in top[:15]
        ],
    }


# ---- main -----------------------------------------------------------------------------------------


async def main(args: argparse.Namespace, shm: str | None) -> dict[str, Any]:
    base = args.dir
    started = time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "scheduler",
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "data_dir_base": base or tempfile.gettempdir(),
        "disk": disk_costs(base),
    }
    out["accept"] = {
        "what": "dispatch_task waitSeconds=0 latency (ms) with the queue at depth; goal p95 <= 3 ms over stdio",
        "fsync_on": await accept_latency(args.queued, args.samples, True, base),
        "fsync_off": await accept_latency(args.queued, args.samples, False, base),
        "fsync_on_executor": await accept_latency(args.queued, args.samples, True, base, "daemon"),
    }
    tp: dict[str, Any] = {"what": "mock runs/s, first dispatch to last completion; goal >= 300"}
    tp["in_process_fsync_on"] = await throughput_in_process(args.runs, True, base)
    tp["in_process_fsync_off"] = await throughput_in_process(args.runs, False, base)
    if shm:
        tp["in_process_tmpfs"] = await throughput_in_process(args.runs, False, shm)
    with raw_flock():
        tp["what_if_raw_flock_in_process_fsync_off"] = await throughput_in_process(args.runs, False, base)
        if shm:
            tp["what_if_raw_flock_in_process_tmpfs"] = await throughput_in_process(args.runs, False, shm)
    tp["mcp_stdio_fsync_on"] = await throughput_mcp(args.mcp_runs, True, base)
    tp["mcp_stdio_fsync_off"] = await throughput_mcp(args.mcp_runs, False, base)
    tp["mcp_stdio_executor_fsync_on"] = await throughput_mcp(args.mcp_runs, True, base, executor="daemon")
    if shm:
        tp["mcp_stdio_tmpfs"] = await throughput_mcp(args.mcp_runs, False, shm)
    out["throughput"] = tp
    out["interactive_wait"] = await interactive_wait(base)
    out["costs"] = await costs_per_run(base)
    if args.profile:
        out["profile_disk"] = await profile(base, args.profile_runs)
        if shm:
            out["profile_tmpfs"] = await profile(shm, args.profile_runs)
    out["goals"] = {
        "accept_p95_ms_le_3": out["accept"]["fsync_on"]["at_depth"]["p95"] <= 3.0,
        "in_process_fsync_on_ge_300_runs_per_s": tp["in_process_fsync_on"]["runs_per_second"] >= 300,
        "in_process_fsync_on_le_3_ms_cpu_per_run": tp["in_process_fsync_on"]["cpu_ms_per_run"]["total"] <= 3.0,
        "mcp_stdio_fsync_on_ge_200_runs_per_s": tp["mcp_stdio_fsync_on"]["runs_per_second"] >= 200,
        "accept_p95_ms_le_3_executor": out["accept"]["fsync_on_executor"]["at_depth"]["p95"] <= 3.0,
        "mcp_stdio_executor_fsync_on_ge_200_runs_per_s": tp["mcp_stdio_executor_fsync_on"]["runs_per_second"] >= 200,
    }
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out["bench_seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--mcp-runs", type=int, default=1000)
    parser.add_argument("--dir", help="where the data directories go (default: the temp dir)")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of in-process runs")
    parser.add_argument("--profile-runs", type=int, default=500)
    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    print(json.dumps(anyio.run(main, parser.parse_args(), tmpfs)))
