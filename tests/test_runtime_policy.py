"""Runtime selection and fallback policy: deterministic, refuses what cannot run, stable across restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import FailureClass, ModelName, RuntimeMode, WorkerRecord
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.service import Orchestrator
from mcp_orchestrator.service.policy import COMPATIBLE, FALLBACK_SAFE, fallback_runtime, select_runtime

MODELS = list(get_args(ModelName))
MODES = list(get_args(RuntimeMode))
CLASSES = list(get_args(FailureClass))
maybe_mode = st.none() | st.sampled_from(MODES)


@given(model=st.sampled_from(MODELS), requested=maybe_mode, default=maybe_mode)
def test_selection_is_deterministic_and_valid(model: str, requested: str | None, default: str | None) -> None:
    try:
        first = select_runtime(model, requested, default)  # type: ignore[arg-type]
    except InvalidArgument as e:
        assert requested is not None
        assert requested not in COMPATIBLE[model]
        assert all(mode in str(e) for mode in COMPATIBLE[model])  # noqa: PT017 - the refusal lists valid modes
        return
    assert first in COMPATIBLE[model]
    assert all(select_runtime(model, requested, default) == first for _ in range(5))  # type: ignore[arg-type]
    if requested is not None:
        assert first == requested


def _worker(model: str, policy: str) -> WorkerRecord:
    return WorkerRecord(
        name="w",
        model=model,  # type: ignore[arg-type]
        runtime_mode=COMPATIBLE[model][0],
        fallback_policy=policy,  # type: ignore[arg-type]
        workdir="/",
        owner_agent_id="a",
        created_at=datetime.now(UTC),
    )


@given(
    model=st.sampled_from(MODELS),
    failed=st.sampled_from(MODES),
    failure=st.sampled_from(CLASSES),
    policy=st.sampled_from(["on_error", "never"]),
    keys=st.fixed_dictionaries({}, optional={"OPENAI_API_KEY": st.just("k"), "GEMINI_API_KEY": st.just("k")}),
)
def test_fallback_rules(model: str, failed: str, failure: str, policy: str, keys: dict[str, str]) -> None:
    worker = _worker(model, policy)
    alt = fallback_runtime(worker, failed, failure, keys)  # type: ignore[arg-type]
    assert alt == fallback_runtime(worker, failed, failure, keys)  # type: ignore[arg-type]
    if policy == "never" or failure not in FALLBACK_SAFE:
        assert alt is None  # `canceled`, `timeout`, `bad_output`... never fall back
        return
    if alt is not None:
        assert alt != failed
        assert alt in COMPATIBLE[model]
    if failed in ("openai_sdk", "google_sdk") and model in ("codex_cli", "gemini_cli"):
        assert alt == "cli"
    if failed == "cli" and model == "codex_cli":  # _worker() is a writer: an SDK cannot write its files
        assert alt is None
        reviewer = worker.model_copy(update={"role": "reviewer"})
        expected = "openai_sdk" if "OPENAI_API_KEY" in keys else None
        assert fallback_runtime(reviewer, failed, failure, keys) == expected  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(model=st.sampled_from(MODELS), requested=maybe_mode, default=maybe_mode)
def test_selection_survives_restarts(tmp_path_factory: pytest.TempPathFactory, model, requested, default) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("sel")
    env = {"MCP_ORCHESTRATOR_HOME": str(tmp / "home"), "MCP_ORCHESTRATOR_ROOTS": str(tmp)}
    if default:
        env["MCP_WORKER_RUNTIME_DEFAULT"] = default

    async def spawn_then_restart() -> tuple[str, str] | None:
        orch = Orchestrator(Settings.from_env(env, cwd=Path(tmp)))
        async with orch.running():
            try:
                worker = await orch.spawn_worker("a", "w", model, runtime_mode=requested)
            except InvalidArgument:
                return None
        again = Orchestrator(Settings.from_env(env, cwd=Path(tmp)))
        async with again.running():
            reloaded = (await again.list_workers())[0]
        return worker.runtime_mode, reloaded.runtime_mode

    result = anyio.run(spawn_then_restart)
    if result is not None:
        assert result[0] == result[1] == select_runtime(model, requested, default)
