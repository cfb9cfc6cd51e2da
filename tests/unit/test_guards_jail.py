"""guards: the workdir jail and the id/name checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_orchestrator.errors import InvalidArgument, PathNotAllowed
from mcp_orchestrator.guards import check_agent_id, check_name, check_run_id, jail_workdir


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (allowed) with symlinks in and out; outside/ and root-sibling/ next to it."""
    root = (tmp_path / "root").resolve()
    (root / "work" / "deep").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    sibling = tmp_path / "root-sibling"
    sibling.mkdir()
    (root / "to-outside").symlink_to(outside)
    (root / "to-etc").symlink_to("/etc")
    (root / "to-tmp").symlink_to("/tmp")
    (root / "to-sibling").symlink_to("../root-sibling")
    (root / "to-work").symlink_to("work")
    (root / "work" / "up").symlink_to("../..")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "file").write_text("x")
    return {"root": root, "outside": outside, "sibling": sibling}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        (".", ""),
        ("work", "work"),
        ("work/", "work"),
        ("./work/deep/..", "work"),
        ("work/deep", "work/deep"),
        ("to-work", "work"),
        ("to-work/deep", "work/deep"),
        ("work/up/root/work", "work"),  # leaves the root through a symlink, then comes back: resolved inside
    ],
)
def test_inside_the_root_is_accepted_and_resolved(tree: dict[str, Path], value: str | None, expected: str) -> None:
    root = tree["root"]
    assert jail_workdir(value, (root,)) == (root / expected if expected else root)


ESCAPES = ["..", "../..", "/", "/etc", "/tmp", "to-outside", "to-etc", "to-tmp", "to-sibling", "work/up", "work/../.."]
ESCAPES += ["to-outside/", "to-etc/ssl", "<outside>", "<root>/../outside", "<sibling>", "<root>-sibling"]


@pytest.mark.parametrize("value", ESCAPES)
def test_outside_the_root_is_refused(tree: dict[str, Path], value: str) -> None:
    value = value.replace("<outside>", str(tree["outside"])).replace("<sibling>", str(tree["sibling"]))
    value = value.replace("<root>", str(tree["root"]))
    with pytest.raises(PathNotAllowed) as info:
        jail_workdir(value, (tree["root"],))
    assert "MCP_ORCHESTRATOR_ROOTS" in str(info.value)


@pytest.mark.parametrize("value", ["missing", "file", "loop-a", "work/deep/missing/..", "x" * 300, "a/" * 3000])
def test_unusable_paths_are_refused(tree: dict[str, Path], value: str) -> None:
    with pytest.raises(InvalidArgument):
        jail_workdir(value, (tree["root"],))


def test_nul_bytes_are_refused(tree: dict[str, Path]) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        jail_workdir("work\x00/../..", (tree["root"],))


def test_huge_paths_are_refused_with_a_short_message(tree: dict[str, Path]) -> None:
    for value in ("x" * 1_000_000, "é/" * 10_000, "w" * 5000):
        with pytest.raises(InvalidArgument) as info:
            jail_workdir(value, (tree["root"],))
        assert len(str(info.value)) < 1000


def test_a_second_root_is_honoured(tree: dict[str, Path]) -> None:
    roots = (tree["root"], tree["outside"].resolve())
    assert jail_workdir(str(tree["outside"]), roots) == tree["outside"].resolve()
    assert jail_workdir("to-outside", roots) == tree["outside"].resolve()
    assert jail_workdir(None, roots) == tree["root"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_unreadable_directory_is_refused(tree: dict[str, Path]) -> None:
    locked = tree["root"] / "locked"
    locked.mkdir(mode=0o000)
    try:
        with pytest.raises(PathNotAllowed, match="not readable"):
            jail_workdir("locked", (tree["root"],))
    finally:
        locked.chmod(0o755)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("jail")
    root = (base / "root").resolve()
    (root / "work" / "deep").mkdir(parents=True)
    (base / "outside").mkdir()
    (root / "to-outside").symlink_to(base / "outside")
    (root / "to-etc").symlink_to("/etc")
    (root / "to-work").symlink_to("work")
    (root / "work" / "up").symlink_to("../..")
    return root


@settings(max_examples=150, deadline=None, database=None)
@given(
    parts=st.lists(st.sampled_from(["..", ".", "work", "deep", "to-work", "to-outside", "up", "to-etc"]), max_size=8)
)
def test_whatever_it_accepts_is_inside_the_root(shared_root: Path, parts: list[str]) -> None:
    try:
        got = jail_workdir("/".join(parts), (shared_root,))
    except InvalidArgument:
        return
    assert got == shared_root or got.is_relative_to(shared_root)
    assert got.resolve() == got


# ---- ids and names -----------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["a", "claude-main", "A.b_c-1", "x" * 64])
def test_agent_ids_accepted(good: str) -> None:
    assert check_agent_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "é", "a\x00", None, 1, ["a"], "a\n"])
def test_agent_ids_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="agentId"):
        check_agent_id(bad)


@pytest.mark.parametrize("good", ["w", "writer-1", "W.2_x", "0" * 64, "w.json"])
def test_names_accepted(good: str) -> None:
    assert check_name(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", ".hidden", "-x", "_x", "a/b", "a\\b", "x" * 65, "a\n", "ü", None, 3])
def test_names_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument):
        check_name(bad)


@pytest.mark.parametrize(
    "bad", ["run_", "run_" + "0" * 19, "run_" + "0" * 21, "run_" + "G" * 20, "RUN_" + "0" * 20, "../run", None]
)
def test_run_ids_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="runId"):
        check_run_id(bad)


def test_run_ids_accepted() -> None:
    assert check_run_id("run_0123456789abcdef0123") == "run_0123456789abcdef0123"
