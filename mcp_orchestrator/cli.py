"""The operator CLI: ``mcp-orchestrator serve | daemon | workers | runs | panic | dispatch | store | probe``, and
``logs | diag | optimize | replay | prune`` (in ``cli_ops.py``).

Data goes to stdout, progress and diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, get_args

import anyio

from mcp_orchestrator import __version__
from mcp_orchestrator.cli_ops import add_commands as add_observability_commands
from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import ModelName, RuntimeMode
from mcp_orchestrator.errors import OrchestratorError, UsageError

if TYPE_CHECKING:  # the service loads for the commands that use it: not ``serve`` (issue 15: start-up)
    from mcp_orchestrator.service import Orchestrator
    from mcp_orchestrator.service.events import RunEvent

__all__ = ["entry", "main"]

OPERATOR = "operator"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _with_service(
    fn: Callable[[Orchestrator, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from mcp_orchestrator.service import Orchestrator

        async def go() -> int:
            orch = Orchestrator(Settings.from_env())
            async with orch.running(take_over=False):  # a short-lived command adopts no dead server's runs
                return await fn(orch, args)

        return anyio.run(go)

    return run


def _serve(args: argparse.Namespace) -> int:
    from mcp_orchestrator.server import build_server

    settings = Settings.from_env()
    if args.transport == "stdio":
        from mcp_orchestrator.server.stdio import run_stdio

        anyio.run(run_stdio, build_server(settings, front_end=settings.executor == "daemon"))
    else:
        from mcp_orchestrator.server.auth.commands import exposure_from_args
        from mcp_orchestrator.server.http import serve_http

        exposure = exposure_from_args(args, settings)
        exposure.check()  # refuse before anything starts
        anyio.run(serve_http, settings, exposure)
    return 0


def _daemon(args: argparse.Namespace) -> int:
    from mcp_orchestrator.service.daemon import daemon_status, daemon_stop, detach_and_lock, run_executor

    settings = Settings.from_env()
    if args.daemon_command == "run":
        fd = None
        if args.detach:
            fd = detach_and_lock(settings)
            if fd is None:
                return 0  # another executor runs: nothing to start
        return anyio.run(run_executor, settings, fd)
    if args.daemon_command == "status":
        status = anyio.run(daemon_status, settings)
        _print_json(status)
        return 0 if status["alive"] else 1
    result = anyio.run(daemon_stop, settings, args.timeout)
    _print_json(result)
    return 0 if result["stopped"] or "no executor" in str(result.get("reason")) else 1


def _worker(args: argparse.Namespace) -> int:
    from mcp_orchestrator.guards import check_machine
    from mcp_orchestrator.service.temporal.worker import run_worker

    settings = Settings.from_env()
    if args.machine is not None:
        try:
            check_machine(args.machine, "--machine")
        except UsageError as e:
            print(f"mcp-orchestrator worker: {e}", file=sys.stderr)
            return 2

    def ready(queues: list[str]) -> None:
        print(f"worker ready on {settings.temporal.address}: {' '.join(queues)}", flush=True)

    async def go() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as tg:

                async def stop() -> None:
                    async for _ in signals:
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(stop)
                await run_worker(settings, args.backend, label=args.label, machine=args.machine, on_ready=ready)

    anyio.run(go)
    # The pollers have shut down and every step has ended. Leave without the interpreter's final garbage
    # collection: dropping the Temporal SDK's native client there can block the exit indefinitely.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _token(args: argparse.Namespace) -> int:
    from mcp_orchestrator.server.auth.commands import token_command

    return token_command(args)


def _probe(args: argparse.Namespace) -> int:
    from mcp_orchestrator.readiness.command import probe_command  # the probes load only when asked

    return probe_command(args)


@_with_service
async def _workers(orch: Orchestrator, args: argparse.Namespace) -> int:
    workers = await orch.list_workers(args.status)
    if args.json:
        _print_json([w.to_wire().model_dump(mode="json") for w in workers])
    else:
        for w in workers:
            print(f"{w.name:24} {w.model:11} {w.runtime_mode:10} {w.status:8} {w.owner_agent_id:16} {w.workdir}")
        if not workers:
            print("no workers", file=sys.stderr)
    return 0


@_with_service
async def _runs_list(orch: Orchestrator, args: argparse.Namespace) -> int:
    page = await orch.list_runs(
        worker_name=args.worker, agent_id=args.agent, status=args.status, limit=args.limit, cursor=args.cursor
    )
    if args.json:
        _print_json(page.model_dump(mode="json"))
        return 0
    for r in page.runs:
        print(f"{r.run_id}  {r.status:9} {','.join(r.workers):20} {r.created_at:%Y-%m-%d %H:%M:%S}  {r.task[:60]!r}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


@_with_service
async def _runs_show(orch: Orchestrator, args: argparse.Namespace) -> int:
    run = await orch.get_run(args.run_id)
    _print_json(run.to_wire().model_dump(mode="json"))
    return 0


@_with_service
async def _panic(orch: Orchestrator, args: argparse.Namespace) -> int:
    if args.action == "on":
        state = await orch.panic(OPERATOR, args.reason or "engaged by the operator")
    elif args.action == "off":
        state = await orch.release_panic()
    else:
        state = await orch.panic_state()
    _print_json(state.model_dump(mode="json"))
    return 0


@_with_service
async def _scheduler(orch: Orchestrator, args: argparse.Namespace) -> int:
    view = await orch.scheduler_overview()
    _print_json(view.model_dump(mode="json"))
    return 0


@_with_service
async def _store_check(orch: Orchestrator, args: argparse.Namespace) -> int:
    moved = await orch.io(orch.store.check)
    quarantined = orch.store.quarantined()
    _print_json({"home": str(orch.settings.home), "movedNow": moved, "quarantine": quarantined})
    return 0


@_with_service
async def _dispatch(orch: Orchestrator, args: argparse.Namespace) -> int:
    name = args.worker or f"{OPERATOR}-{args.model}".replace("_", "-")
    existing = {w.name: w for w in await orch.list_workers()}
    worker = existing.get(name)
    if worker is None or worker.status == "stopped":
        worker = await orch.spawn_worker(
            OPERATOR, name, args.model, runtime_mode=args.runtime, workdir=args.workdir, role=args.role
        )
        print(f"spawned worker {name} ({worker.model} via {worker.runtime_mode})", file=sys.stderr)
    run = await orch.dispatch(OPERATOR, args.task, workers=[name], continue_session=args.continue_session)
    print(f"dispatched {run.run_id}", file=sys.stderr)

    async def show(event: RunEvent) -> None:
        print(f"  … {event.message}", file=sys.stderr)

    run = await orch.wait_run(run.run_id, args.timeout, show)
    if not run.terminal:
        await orch.cancel_run(OPERATOR, run.run_id)
        run = await orch.get_run(run.run_id)
    _print_json(run.to_wire().model_dump(mode="json"))
    print(f"run {run.run_id} {run.status}", file=sys.stderr)
    return 0 if run.status == "completed" else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcp-orchestrator", description=__doc__)
    p.add_argument("--version", action="version", version=f"mcp-orchestrator {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the MCP server")
    s.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    a = s.add_argument_group("exposing the server (HTTP transports; see the README)")
    a.add_argument("--tokens", metavar="FILE", help="static bearer tokens file (env MCP_ORCHESTRATOR_TOKENS)")
    a.add_argument("--no-auth", action="store_true", help="loopback only: ignore any tokens file")
    a.add_argument("--auth-issuer", metavar="URL", help="OAuth 2.1 issuer whose JWTs are accepted")
    a.add_argument("--auth-audience", help="the audience those JWTs must name (default: the public URL)")
    a.add_argument("--auth-jwks-url", metavar="URL", help="the issuer's JWKS (default: from its metadata)")
    a.add_argument("--auth-agents-claim", metavar="CLAIM", help="JWT claim listing agentIds (default agent_ids)")
    a.add_argument("--public-url", metavar="URL", help="this server's URL as clients see it (behind a proxy)")
    a.add_argument("--allowed-host", action="append", metavar="HOST[:PORT]", help="an extra allowed Host")
    a.add_argument("--allowed-origin", action="append", metavar="ORIGIN", help="an extra allowed Origin")
    a.add_argument("--max-body-bytes", type=int, help="request body limit (default 4 MiB)")
    a.add_argument("--max-sessions", type=int, help="open sessions per credential (default 16)")
    a.add_argument("--dispatch-rate", metavar="N/SECONDS", help="dispatches per credential (default 60/60)")
    s.set_defaults(func=_serve)

    dm = sub.add_parser("daemon", help="the data directory's run executor (started by serve; see the README)")
    dms = dm.add_subparsers(dest="daemon_command", required=True)
    drun = dms.add_parser("run", help="run the executor in the foreground (serve starts it with --detach)")
    drun.add_argument("--detach", action="store_true", help="take the lock, then fork into a new session")
    dms.add_parser("status", help="the executor's pid, runs and idle time (exit 1 when none runs)")
    dstop = dms.add_parser("stop", help="stop it: its running runs are canceled, queued ones wait for the next")
    dstop.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it to exit")
    dm.set_defaults(func=_daemon)

    wk = sub.add_parser(
        "worker", help="execute runs and steps for the Temporal engine (MCP_ORCHESTRATOR_ENGINE=temporal)"
    )
    wk.add_argument(
        "--backend",
        action="append",
        metavar="MODEL/RUNTIME",
        help="a backend to serve, e.g. codex_cli/cli (repeatable; default: every one this machine can run)",
    )
    wk.add_argument("--label", help="how steps name this worker (default: worker <host>:<pid>)")
    wk.add_argument(
        "--machine",
        help="this machine's name: the steps of workers spawned with this machine run here "
        "(default: MCP_ORCHESTRATOR_MACHINE, else the hostname)",
    )
    wk.set_defaults(func=_worker)

    tk = sub.add_parser("token", help="static bearer tokens for the HTTP transports")
    tk.add_argument("--file", help="the tokens file (default: MCP_ORCHESTRATOR_TOKENS, else <home>/tokens.json)")
    tks = tk.add_subparsers(dest="token_command", required=True)
    ta = tks.add_parser("add", help="issue a token (printed once on stdout)")
    ta.add_argument("--agent", action="append", help="an agentId it may act as (repeatable)")
    ta.add_argument("--scope", action="append", choices=["runs:read", "runs:write", "operator"])
    ta.add_argument("--label", help="a note for `token list`")
    tks.add_parser("list", help="issued tokens (never their values)")
    tr = tks.add_parser("revoke", help="revoke a token; servers refuse it at once")
    tr.add_argument("token_id")
    tk.set_defaults(func=_token)

    w = sub.add_parser("workers", help="list workers")
    w.add_argument("--status", choices=["idle", "busy", "stopped"])
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_workers)

    r = sub.add_parser("runs", help="list or show runs").add_subparsers(dest="runs_command", required=True)
    rl = r.add_parser("list", help="runs, newest first")
    rl.add_argument("--worker")
    rl.add_argument("--agent")
    rl.add_argument("--status", choices=["accepted", "running", "completed", "failed", "canceled"])
    rl.add_argument("--limit", type=int, default=20)
    rl.add_argument("--cursor")
    rl.add_argument("--json", action="store_true")
    rl.set_defaults(func=_runs_list)
    rs = r.add_parser("show", help="one run as JSON")
    rs.add_argument("run_id")
    rs.set_defaults(func=_runs_show)

    pr = sub.add_parser("probe", help="readiness probes: CLIs, SDKs, store, server, workers (exit 1 on a failure)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--live", action="store_true", help="also make one real minimal call through each ready SDK")
    pr.add_argument("--write-evidence", nargs="?", const="", metavar="DIR", help="also write DIR/probes.json")
    pr.set_defaults(func=_probe)

    sc_view = sub.add_parser("scheduler", help="queues, caps, waits and throughput of every live server")
    sc_view.set_defaults(func=_scheduler)

    pn = sub.add_parser("panic", help="engage, release or show the panic write-guard")
    pn.add_argument("action", choices=["on", "off", "status"])
    pn.add_argument("--reason")
    pn.set_defaults(func=_panic)

    st = sub.add_parser("store", help="data directory maintenance").add_subparsers(dest="store_command", required=True)
    sc = st.add_parser("check", help="verify every document; quarantine corrupt ones")
    sc.set_defaults(func=_store_check)

    d = sub.add_parser("dispatch", help="run one task through the service and print the run")
    d.add_argument("task")
    d.add_argument("--model", choices=get_args(ModelName), default="mock")
    d.add_argument("--runtime", choices=get_args(RuntimeMode))
    d.add_argument("--worker", help="worker name (default: operator-<model>, spawned when missing)")
    d.add_argument("--workdir")
    d.add_argument("--role", default="writer")
    d.add_argument("--timeout", type=float, default=600.0, help="seconds to wait before canceling")
    d.add_argument("--continue-session", action="store_true")
    d.set_defaults(func=_dispatch)

    add_observability_commands(sub)
    return p


def entry() -> None:
    """The console script and ``python -m mcp_orchestrator``: ``main``, then leave with its exit code.

    A command that opened a Temporal client leaves without the interpreter's final garbage collection:
    dropping the SDK's native client there crashed the process (SIGSEGV) after its output was complete."""
    code = main()
    if "temporalio.bridge.client" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcp-orchestrator`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        code: int = args.func(args)
    except OrchestratorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # configuration errors from the environment
        print(f"error: {e}", file=sys.stderr)
        return 2
    return code
