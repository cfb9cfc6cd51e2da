"""Property-based abuse of every tool: malformed arguments only ever give clean error results.

One in-memory server serves every example (through a blocking portal, so hypothesis drives plain
sync tests). Every result must be a success or an ``is_error`` result carrying our own readable
message. In MCP SDK 2.3.0 every tool error starts ``Error executing tool <name>``; a crash is that
prefix *alone* (the SDK hides the exception text and logs a traceback), so the checks are: the
prefix is followed by ``: <message>``, and nothing was logged at ERROR.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError
from mcp.types import CallToolResult, TextContent

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import ModelName, PanicState, RuntimeMode
from mcp_orchestrator.server import build_server
from mcp_orchestrator.store import JsonRunStore

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")),  # raise it for a longer hunt
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DISPATCHER = "fuzz-dispatch"  # owns the only worker runs are dispatched to (a mock worker)
MAX_ERROR_CHARS = 4000
HUGE = "x" * 1_000_000
HUGE_WIDE = "\U0001f4a5" * 250_000  # 1 MB of UTF-8


@dataclass
class Fuzz:
    """The shared server and what the tests need to know about its directories."""

    portal: BlockingPortal
    client: Client
    home: Path
    root: Path
    outside: Path
    run_ids: list[str]
    errors: list[logging.LogRecord] = field(default_factory=list)
    outcomes: Counter[tuple[str, bool]] = field(default_factory=Counter)

    def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        result = self.portal.call(lambda: self.client.call_tool(tool, args, read_timeout_seconds=30))
        assert_clean(tool, result)
        self.outcomes[tool, bool(result.is_error)] += 1
        return result


class _Collect(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(level=logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


def assert_clean(tool: str, result: CallToolResult) -> None:
    """A success, or an error with our own short, readable message: never a hidden crash."""
    if not result.is_error:
        assert result.structured_content is not None
        return
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    prefix = f"Error executing tool {tool}"
    assert block.text != prefix, f"{tool} crashed (the SDK hid the exception)"
    assert block.text.startswith(prefix + ": "), block.text[:500]
    message = block.text[len(prefix) + 2 :]
    assert message.strip()
    assert "Error executing tool" not in message, message[:500]
    assert "Traceback" not in message
    assert len(block.text) <= MAX_ERROR_CHARS, f"{tool}: a {len(block.text)}-character error: {block.text[:300]}"


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    base = tmp_path_factory.mktemp("fuzz")
    home, root, outside = base / "home", (base / "root"), base / "outside"
    home.mkdir()
    (root / "work" / "nested").mkdir(parents=True)
    root = root.resolve()
    outside.mkdir()
    (outside / "sentinel.txt").write_text("must stay untouched\n")
    # Symlinks inside the root: three escape it, two stay inside.
    (root / "to-outside").symlink_to(outside)
    (root / "to-etc").symlink_to("/etc")
    (root / "to-tmp").symlink_to("/tmp")
    (root / "work" / "up-and-out").symlink_to("../../outside")
    (root / "to-work").symlink_to(root / "work")
    (root / "a-file").write_text("not a directory\n")
    before = {"outside": snapshot(outside), "base": sorted(p.name for p in base.iterdir())}

    cfg = Settings(home=home, roots=(root,), default_runtime="mock")
    errors: list[logging.LogRecord] = []
    handler = _Collect(errors)
    logging.getLogger().addHandler(handler)
    try:
        with (
            start_blocking_portal("asyncio") as portal,
            portal.wrap_async_context_manager(Client(build_server(cfg))) as client,
        ):
            fz = Fuzz(portal, client, home, root, outside, run_ids=[], errors=errors)
            ok = fz.call("spawn_worker", {"agentId": DISPATCHER, "name": "dispatcher", "model": "mock"})
            assert not ok.is_error
            for i in range(3):
                run = fz.call("dispatch_task", {"agentId": DISPATCHER, "task": f"seed {i}", "waitSeconds": 10})
                assert run.structured_content is not None
                fz.run_ids.append(run.structured_content["runId"])
            yield fz
            # Afterwards the server still answers, and every worker it accepted is inside the root.
            listed = fz.call("list_workers", {})
            assert listed.structured_content is not None
            for worker in listed.structured_content["workers"]:
                workdir = Path(worker["workdir"])
                assert workdir == root or workdir.is_relative_to(root), worker
                assert workdir.resolve() == workdir
    finally:
        logging.getLogger().removeHandler(handler)
    print("fuzz outcomes (tool, is_error) -> count:", dict(sorted(fz.outcomes.items())))
    assert snapshot(outside) == before["outside"]
    assert sorted(p.name for p in base.iterdir()) == before["base"]
    assert not (home / "quarantine").exists() or list((home / "quarantine").iterdir()) == []
    assert [r.getMessage() for r in errors] == []


@pytest.fixture(autouse=True)
def _no_logged_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "fuzz" in request.fixturenames:
        fz: Fuzz = request.getfixturevalue("fuzz")
        assert [f"{r.name}: {r.getMessage()}" for r in fz.errors] == []


# ---- strategies -------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
nul_text = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=20), st.text(max_size=20))
odd_text = st.one_of(
    st.text(max_size=200),  # any unicode JSON can carry (hypothesis leaves out surrogates)
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co"]), max_size=40),
    st.sampled_from(["", " ", "\u202e", "\ufeff", "\u200b", "e\u0301", "ＡＢＣ", "𝔘𝔫𝔦", "٣", "²", "Ⅻ", "\U0010fffd"]),
    nul_text,
    st.just(HUGE),
    st.just(HUGE_WIDE),
)
TRAVERSALS = ["..", "../..", "../../..", "../../../etc", "/", "/etc", "/etc/passwd", "/tmp", "/proc/self/cwd"]
TRAVERSALS += ["~", "~root", "./../", "work/../..", "work/../../outside", "to-outside", "to-etc", "to-tmp", "a-file"]
TRAVERSALS += ["work/up-and-out", "to-outside/", "to-etc/ssl", "work/up-and-out/", "run_../../x", "..\\..\\windows"]
TRAVERSALS += ["%2e%2e/%2e%2e"]
traversal = st.sampled_from(TRAVERSALS)
anything = st.one_of(json_values, odd_text, traversal)


@st.composite
def tool_args(
    draw: st.DrawFn, required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    """Valid arguments, then up to three fields replaced by abuse, dropped, or joined by unknown ones.

    Starting from a valid call means one bad field at a time reaches the deep checks (a path
    check only runs once the agent id and name passed).
    """
    args = {k: draw(v) for k, v in required.items()}
    args.update({k: draw(v) for k, v in optional.items() if draw(st.booleans())})
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        key = draw(st.sampled_from([*required, *optional, "unexpected", ""]))
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            args.pop(key, None)
        else:
            args[key] = draw(anything)
    return args


agents = st.sampled_from(["fuzz-a", "fuzz-b", "x" * 64])
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)
waits = st.one_of(st.floats(min_value=0, max_value=0.5), st.sampled_from([-1, -0.0001, 600.001, 1e308, "1", True]))


def run_ids(fz: Fuzz) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(fz.run_ids),
        st.from_regex(r"run_[0-9a-f]{20}", fullmatch=True),
        st.sampled_from(["run_", "run_0000000000000000000g", "RUN_00000000000000000000", "run_" + "0" * 21]),
    )


# ---- tests ------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_spawn_worker_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    workdirs = st.one_of(
        traversal,
        st.sampled_from(["work", "work/nested", ".", "to-work", "to-work/nested", str(fuzz.root / "work")]),
        st.sampled_from([str(fuzz.outside), str(fuzz.root) + "/../outside", str(fuzz.root) + "-sibling"]),
        odd_text,
    )
    args = data.draw(
        tool_args(
            {"agentId": agents, "name": names, "model": st.sampled_from(get_args(ModelName))},
            {
                "runtimeMode": st.sampled_from(get_args(RuntimeMode)),
                "fallbackPolicy": st.sampled_from(["on_error", "never"]),
                "workdir": workdirs,
                "role": st.sampled_from(["writer", "reviewer", "a-b_c"]),
                "timeoutSeconds": st.floats(min_value=1, max_value=86_400),
                "stallSeconds": st.floats(min_value=1, max_value=86_400),
                "modelName": st.sampled_from(["gpt-5.5", "gemini-3"]),
            },
        )
    )
    result = fuzz.call("spawn_worker", args)
    if result.is_error:
        return
    worker = result.structured_content
    assert worker is not None
    workdir = Path(worker["workdir"])
    assert workdir == fuzz.root or workdir.is_relative_to(fuzz.root), (args.get("workdir"), workdir)
    assert workdir.resolve(strict=True) == workdir
    assert workdir.is_dir()
    raw = args.get("workdir")
    if isinstance(raw, str) and raw:
        escapes = ("to-outside", "to-etc", "to-tmp", "up-and-out", "..", "/etc", "/tmp", "/proc", "outside")
        assert not any(part in raw for part in escapes) or workdir.is_relative_to(fuzz.root)


@FUZZ
@given(data=st.data())
def test_stop_worker_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(tool_args({"agentId": agents, "name": names}, {}))
    fuzz.call("stop_worker", args)


@FUZZ
@given(data=st.data())
def test_list_workers_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(tool_args({}, {"status": st.sampled_from(["idle", "busy", "stopped"])}))
    fuzz.call("list_workers", args)


@FUZZ
@given(data=st.data())
def test_runtimes_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    fuzz.call("runtimes", data.draw(tool_args({}, {})))


@FUZZ
@given(data=st.data())
def test_dispatch_task_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(
        tool_args(
            {"agentId": st.just(DISPATCHER), "task": st.text(min_size=1, max_size=300)},
            {
                "strategy": st.just("single_worker"),
                "workers": st.one_of(st.just(["dispatcher"]), st.lists(names | anything, max_size=40)),
                "waitSeconds": waits,
                "idempotencyKey": st.text(min_size=1, max_size=200),
                "continueSession": st.booleans(),
                "timeoutSeconds": st.floats(min_value=1, max_value=60),
            },
        )
    )
    result = fuzz.call("dispatch_task", {**args, "detail": "full"})  # the full record names its agent
    if not result.is_error:
        run = result.structured_content
        assert run is not None
        assert run["agentId"] == DISPATCHER
        assert run["status"] in ("accepted", "running", "completed", "failed")


@FUZZ
@given(data=st.data())
def test_get_run_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(tool_args({"runId": run_ids(fuzz)}, {"waitSeconds": waits}))
    result = fuzz.call("get_run", args)
    if not result.is_error:
        assert result.structured_content is not None
        assert result.structured_content["runId"] in fuzz.run_ids or result.structured_content["runId"]


@FUZZ
@given(data=st.data())
def test_list_worker_runs_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(
        tool_args(
            {},
            {
                "workerName": st.sampled_from(["dispatcher", "nobody"]) | names,
                "agentId": st.sampled_from([DISPATCHER, "fuzz-a"]),
                "status": st.sampled_from(["accepted", "running", "completed", "failed", "canceled"]),
                "strategy": st.just("single_worker"),
                "limit": st.integers(min_value=-5, max_value=205),
                "cursor": run_ids(fuzz),
            },
        )
    )
    result = fuzz.call("list_worker_runs", args)
    if not result.is_error:
        page = result.structured_content
        assert page is not None
        ids = [r["runId"] for r in page["runs"]]
        assert ids == sorted(ids, reverse=True)


@FUZZ
@given(data=st.data())
def test_cancel_run_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(tool_args({"agentId": st.sampled_from([DISPATCHER, "fuzz-a"]), "runId": run_ids(fuzz)}, {}))
    fuzz.call("cancel_run", args)


@FUZZ
@given(data=st.data())
def test_panic_malformed(fuzz: Fuzz, data: st.DataObject) -> None:
    args = data.draw(tool_args({"agentId": agents, "reason": st.text(min_size=1, max_size=100)}, {}))
    result = fuzz.call("panic", args)
    if not result.is_error:
        assert result.structured_content is not None
        assert result.structured_content["engaged"] is True
        # Release it (an operator's job) so the other tests keep reaching past the write guard.
        JsonRunStore(fuzz.home, fsync=False).set_panic(PanicState(engaged=False))


@FUZZ
@given(tool=st.sampled_from(["no_such_tool", "", "spawn_worker ", "../panic", HUGE[:10_000]]), args=json_values)
def test_unknown_tools_and_non_object_arguments(fuzz: Fuzz, tool: str, args: Any) -> None:
    arguments = args if isinstance(args, dict) else {"value": args}
    result = fuzz.portal.call(lambda: fuzz.client.call_tool(tool, arguments))
    assert result.is_error
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text.strip()


@FUZZ
@given(
    uri=st.one_of(
        st.builds(lambda rid: f"runs://{rid}", st.text(max_size=40) | traversal),
        st.builds(
            lambda rid, idx: f"runs://{rid}/steps/{idx}/output",
            st.sampled_from(["run_00000000000000000000", "../..", "x"]),
            st.sampled_from(["0", "9", "-1", "²", "٣", "1e3", "00000001", "9999999", "..", "%2e%2e", "0x1"]),
        ),
    )
)
def test_resources_refuse_malformed_uris(fuzz: Fuzz, uri: str) -> None:
    # A crash in a resource handler is logged at ERROR (checked after every test) and hides its text.
    message = "read"
    try:
        fuzz.portal.call(lambda: fuzz.client.read_resource(uri))
    except MCPError as e:
        message = e.error.message
    assert message.strip()
    assert "Traceback" not in message


def test_step_output_resource_with_unicode_digits(fuzz: Fuzz) -> None:
    """A real run with a non-ASCII digit as step index is refused, not crashed on."""
    for index in ("²", "٣", "０"):
        uri = f"runs://{fuzz.run_ids[0]}/steps/{index}/output"
        with pytest.raises(MCPError, match="not a number"):
            fuzz.portal.call(lambda u=uri: fuzz.client.read_resource(u))
    ok = fuzz.portal.call(lambda: fuzz.client.read_resource(f"runs://{fuzz.run_ids[0]}/steps/0/output"))
    assert "mock answer" in ok.contents[0].text  # type: ignore[union-attr]


def test_nothing_escaped_the_directories(fuzz: Fuzz) -> None:
    """Every file the server wrote is under its data directory, and the outside tree is untouched."""
    home_entries = {p.name for p in fuzz.home.iterdir()}
    known = {"runs", "active", "index", "idempotency", "workers", "quarantine", "panic.json", "panic.json.lock"}
    known |= {"markers"}  # the empty files that markers are hard links to
    assert home_entries <= known | {"owned", "processes", "cancel", "logs"}
    assert (fuzz.outside / "sentinel.txt").read_text() == "must stay untouched\n"
    assert sorted(p.name for p in fuzz.outside.iterdir()) == ["sentinel.txt"]
    for p in fuzz.home.rglob("*"):
        assert os.path.realpath(p).startswith(str(fuzz.home.resolve()))


# ---- deterministic cases ----------------------------------------------------------------------

_BASELINE: dict[str, dict[str, Any]] = {
    "spawn_worker": {"agentId": "fuzz-a", "name": "baseline", "model": "mock", "workdir": "work"},
    "stop_worker": {"agentId": "fuzz-a", "name": "baseline"},
    "list_workers": {"status": "idle"},
    "dispatch_task": {"agentId": DISPATCHER, "task": "hello", "workers": ["dispatcher"], "waitSeconds": 0},
    "get_run": {"runId": "run_00000000000000000000"},
    "list_worker_runs": {"workerName": "dispatcher", "agentId": DISPATCHER, "status": "completed"},
    "cancel_run": {"agentId": DISPATCHER, "runId": "run_00000000000000000000"},
    "panic": {"agentId": "fuzz-a", "reason": "stop"},
}
_STRING_FIELDS = [
    (tool, name)
    for tool, args in _BASELINE.items()
    for name in [*args, *(["role", "modelName", "runtimeMode"] if tool == "spawn_worker" else [])]
    + (["idempotencyKey", "strategy"] if tool == "dispatch_task" else [])
    + (["cursor", "strategy"] if tool == "list_worker_runs" else [])
    if name != "waitSeconds"
]


@pytest.mark.parametrize("value", [HUGE, HUGE_WIDE, "a\x00b", "../../etc", "\u202e\ufeff"], ids=repr)
@pytest.mark.parametrize(("tool", "name"), _STRING_FIELDS)
def test_every_string_field_refuses_abuse(fuzz: Fuzz, tool: str, name: str, value: str) -> None:
    free_text = {"task", "reason", "idempotencyKey"}
    if (name in free_text and value in ("../../etc", "\u202e\ufeff")) or (name, value) == ("modelName", "../../etc"):
        pytest.skip("valid free text (never used as a path)")
    args = {**_BASELINE[tool], name: [value] if name == "workers" else value}
    result = fuzz.call(tool, args)
    assert result.is_error, (tool, name, repr(value)[:100])


_ACCEPTED = ["", ".", "work", "work/nested", "to-work", "to-work/nested", "work/../work", "./work/"]
_REFUSED = ["to-outside", "to-etc", "to-tmp", "work/up-and-out", "work/up-and-out/", "..", "../..", "/etc", "/tmp"]
_REFUSED += ["/", "a-file", "missing", "work/../../outside", "to-etc/..", "~"]


@pytest.mark.parametrize("workdir", [*_ACCEPTED, "<root>/work", "<root>"])
def test_workdirs_inside_the_root_are_accepted(fuzz: Fuzz, workdir: str) -> None:
    workdir = workdir.replace("<root>", str(fuzz.root))
    name = f"in-{abs(hash(workdir)) % 10**8}"
    result = fuzz.call("spawn_worker", {"agentId": "fuzz-b", "name": name, "model": "mock", "workdir": workdir})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    stored = Path(result.structured_content["workdir"])
    assert stored == fuzz.root or stored.is_relative_to(fuzz.root)


@pytest.mark.parametrize("workdir", [*_REFUSED, "<outside>", "<root>/../outside", "<root>-sibling", "<root>/to-etc"])
def test_workdirs_escaping_the_root_are_refused(fuzz: Fuzz, workdir: str) -> None:
    workdir = workdir.replace("<root>", str(fuzz.root)).replace("<outside>", str(fuzz.outside))
    result = fuzz.call("spawn_worker", {"agentId": "fuzz-b", "name": "escaper", "model": "mock", "workdir": workdir})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "workdir" in text
    assert "MCP_ORCHESTRATOR_ROOTS" in text or "NUL" in text
