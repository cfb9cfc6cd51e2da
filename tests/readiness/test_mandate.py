"""The mandate scan: the package passes; every rule catches its planted violation in a temp tree or a temp copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mcp_orchestrator.readiness.mandate import PACKAGE_ROOT, main, scan

# The markers are assembled here so that this file does not carry them itself.
TO_DO, NOT_YET = "TO" + "DO", "N" + "YI"

VIOLATIONS = {
    "raise": ("def f() -> None:\n    raise NotImplementedError\n", "not-implemented"),
    "raise-bare-constant": ("def f() -> None:\n    raise NotImplemented\n", "not-implemented"),
    "comment": (f"x = 1  # {TO_DO}: finish\n", "unfinished-marker"),
    "fixme": (f"# FIX{'ME'} later\n", "unfinished-marker"),
    "string": (f'MESSAGE = "{NOT_YET}"\n', "unfinished-marker"),
    "docstring": ('def f() -> int:\n    """A place' + 'holder."""\n    return 1\n', "unfinished-marker"),
    "phrase": ('x = "not yet ' + 'implemented"\n', "unfinished-marker"),
    "ellipsis-body": ("def f() -> None:\n    ...\n", "stub-body"),
    "pass-body": ('async def f() -> None:\n    """Doc."""\n    pass\n', "stub-body"),
}

CLEAN = '''
from abc import ABC, abstractmethod
from typing import Protocol, overload


class Base(ABC):
    @abstractmethod
    def run(self) -> None:
        ...


class Port(Protocol):
    def read(self) -> bytes:
        """Read."""
        ...


@overload
def g(x: int) -> int: ...
@overload
def g(x: str) -> str: ...
def g(x: object) -> object:
    return x


def ok() -> str:
    return "NotImplemented is a value, XXXL a size, and todo a lower-case word"
'''


def test_the_package_passes_the_mandate() -> None:
    findings, files = scan()
    assert files > 50
    assert findings == [], "\n".join(f"{f.file}:{f.line}: {f.rule}: {f.text}" for f in findings)


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_planted_violation_is_found(case: str, tmp_path: Path) -> None:
    source, rule = VIOLATIONS[case]
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "planted.py").write_text(source)
    findings, _ = scan(tmp_path)
    assert [(f.file, f.rule) for f in findings] == [("planted.py", rule)]


def test_markdown_templates_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "review.md").write_text(f"# Review\n\nSay what is wrong.\n{TO_DO}: more\n")
    [finding] = scan(tmp_path)[0]
    assert (finding.file, finding.line, finding.rule) == ("templates/review.md", 4, "unfinished-marker")


def _registry(root: Path, entries: str) -> None:
    (root / "runtimes").mkdir(parents=True)
    (root / "runtimes" / "__init__.py").write_text(f"_RUNTIMES: dict[str, tuple[str, str]] = {{{entries}}}\n")
    (root / "runtimes" / "mock.py").write_text("class MockRuntime:\n    mode = 'mock'\n")


def test_a_registered_runtime_that_does_not_exist_is_found(tmp_path: Path) -> None:
    _registry(tmp_path, '"mock": ("pkg.runtimes.mock", "MockRuntime")')
    assert scan(tmp_path)[0] == []
    shutil.rmtree(tmp_path / "runtimes")
    _registry(
        tmp_path,
        '"mock": ("pkg.runtimes.mock", "MockRuntime"), "ghost": ("pkg.runtimes.ghost", "GhostRuntime"), '
        '"wrong": ("pkg.runtimes.mock", "WrongRuntime")',
    )
    texts = sorted(f.text for f in scan(tmp_path)[0] if f.rule == "runtime-registry")
    assert texts == [
        "'ghost': module pkg.runtimes.ghost does not exist",
        "'wrong': pkg.runtimes.mock has no WrongRuntime",
    ]


def test_a_violation_planted_in_a_copy_of_the_package_fails_the_strict_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "mcp_orchestrator"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    baseline = {(f.file, f.line, f.rule) for f in scan(copy)[0]}
    target = copy / "runtimes" / "mock.py"
    target.write_text(target.read_text() + f"\n\ndef later() -> None:\n    raise NotImplementedError  # {TO_DO}\n")
    init = copy / "runtimes" / "__init__.py"
    ghost = '"ghost": ("mcp_orchestrator.runtimes.ghost", "G"),\n    "mock": ('
    init.write_text(init.read_text().replace('"mock": (', ghost))
    found = {(f.file, f.rule) for f in scan(copy)[0] if (f.file, f.line, f.rule) not in baseline}
    assert found == {
        ("runtimes/mock.py", "not-implemented"),
        ("runtimes/mock.py", "unfinished-marker"),
        ("runtimes/__init__.py", "runtime-registry"),
    }
    assert main(["--root", str(copy)]) == 0  # report only
    assert "runtimes/mock.py" in capsys.readouterr().out
    assert main(["--root", str(copy), "--strict", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "fail"
    assert {"file": "runtimes/__init__.py", "rule": "runtime-registry"}.items() <= report["findings"][0].items()
