"""The published JSON Schemas in contracts/ match the pydantic models."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_orchestrator.schemas import PUBLISHED, render

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_schema_has_not_drifted(name: str) -> None:
    committed = (CONTRACTS / name).read_text()
    assert committed == render(PUBLISHED[name]), (
        f"contracts/{name} is out of date: run `python -m mcp_orchestrator.schemas` and commit the result"
    )


def test_no_stray_schema_files() -> None:
    on_disk = {p.relative_to(CONTRACTS).as_posix() for p in CONTRACTS.rglob("*.schema.json")}
    assert on_disk == set(PUBLISHED)
