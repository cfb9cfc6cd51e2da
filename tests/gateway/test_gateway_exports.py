"""The gateway's public names: ``__all__`` lists exactly what the package exports, each documented."""

from __future__ import annotations

import inspect

import mcp_orchestrator.gateway as gateway


def test_every_exported_name_exists_and_is_sorted() -> None:
    assert gateway.__all__ == sorted(gateway.__all__)
    for name in gateway.__all__:
        assert hasattr(gateway, name), name


def test_every_public_class_and_function_is_documented() -> None:
    for name in gateway.__all__:
        obj = getattr(gateway, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_the_module_defines_no_public_name_it_does_not_export() -> None:
    public = {n for n, v in vars(gateway).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert public - {"annotations"} == set(gateway.__all__)
