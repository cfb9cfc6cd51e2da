"""lazy.py (issue 15: start-up): a package that re-exports lazily gives, for every exported name, the object
its ``TYPE_CHECKING`` import names (what mypy and readers see), and importing one name loads only its module."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mcp_orchestrator

PACKAGE = Path(mcp_orchestrator.__file__).parent
LAZY = [p for p in sorted(PACKAGE.rglob("__init__.py")) if "lazy_exports" in p.read_text()]


def _declared(init: Path) -> dict[str, str]:
    """Exported name -> the module its ``TYPE_CHECKING`` import takes it from."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(init.read_text())):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.module:
                    out.update({a.name: imp.module for a in imp.names})
    return out


def test_the_lazy_packages_are_found() -> None:
    names = {p.parent.name for p in LAZY}
    assert {"contracts", "gateway", "store", "observability", "service"} <= names


@pytest.mark.parametrize("init", LAZY, ids=lambda p: p.parent.name)
def test_every_exported_name_is_the_declared_object(init: Path) -> None:
    package = "mcp_orchestrator." + ".".join(init.parent.relative_to(PACKAGE).parts)
    module = importlib.import_module(package)
    declared = _declared(init)
    for name in module.__all__:
        assert hasattr(module, name), name
        if name in declared:
            assert getattr(module, name) is getattr(importlib.import_module(declared[name]), name), name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_one_name_loads_only_its_module() -> None:
    code = (
        "import sys\nfrom mcp_orchestrator.contracts import RuntimeMode\n"
        "print(sorted(m for m in sys.modules if m.startswith('mcp_orchestrator.contracts.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['mcp_orchestrator.contracts.base']"
