"""Lazy re-exports for a package ``__init__`` (issue 15: start-up), importable from anywhere; imports nothing.

A package that re-exports its modules' names imports a module when one of its names is first asked for, so
importing one of its modules (or one name) does not import all of them::

    if typing.TYPE_CHECKING:  # what mypy and readers see
        from mcp_orchestrator.contracts.wire import Run
    __all__ = ["Run"]
    _MODULES = ("base", "wire")  # tried in this order: put the cheap ones first
    if not typing.TYPE_CHECKING:  # and no catch-all attribute for mypy
        __getattr__, __dir__ = lazy_exports(__name__, globals(), __all__, _MODULES)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exported: Iterable[str], modules: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``, which exports the names ``exported``: the first
    of its ``modules`` that defines a name asked for provides it (the modules before it are imported too)."""
    names = frozenset(exported)

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module's own hook)
        if name in names:
            for module in modules:
                found = importlib.import_module(f"{package}.{module}")
                if name in vars(found):
                    value = vars(found)[name]
                    namespace[name] = value  # later uses find it without this hook
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*namespace, *names})

    return __getattr__, __dir__
