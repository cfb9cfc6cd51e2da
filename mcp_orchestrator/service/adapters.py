"""What each runtime adapter can do and whether it can run now (the ``runtimes`` tool)."""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic.alias_generators import to_camel

from mcp_orchestrator.contracts import ModelName, RuntimeInfo, RuntimeMode, WorkerRecord
from mcp_orchestrator.service.policy import has_credentials

__all__ = ["describe_runtimes", "worker_runtime_status"]

_MOCK_CAPABILITIES = {
    "jsonlNative": False,
    "schemaStrict": False,
    "transport": "in-process",
    "supportsResume": True,
    "sandboxModes": [],
}


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(k): v for k, v in d.items()}


def describe_runtimes() -> list[RuntimeInfo]:
    """Every runnable (model, runtime) adapter with its normalised status."""
    from mcp_orchestrator.runtimes.cli import ADAPTERS, adapter_status, cli_capabilities  # only when asked

    out = [RuntimeInfo(mode="mock", model="mock", status="ready", capabilities=_MOCK_CAPABILITIES)]
    for model in ADAPTERS:
        status = adapter_status(model)
        out.append(
            RuntimeInfo(
                mode="cli",
                model=model,
                status=status["status"],
                version=status["version"],
                detail=status["detail"],
                capabilities=_camel(cli_capabilities(model)),
            )
        )
    out.extend(_sdk_info(mode, model, package, keys) for mode, model, package, keys in _SDKS)
    return out


# mode, model, importable package, credential variables (only their presence is ever read)
_SDKS: tuple[tuple[RuntimeMode, ModelName, str, str], ...] = (
    ("openai_sdk", "codex_cli", "openai", "OPENAI_API_KEY"),
    ("google_sdk", "gemini_cli", "google.genai", "GEMINI_API_KEY or GOOGLE_API_KEY"),
)
_SDK_CAPABILITIES = {"jsonlNative": False, "schemaStrict": False, "supportsResume": False, "sandboxModes": []}


def _sdk_status(mode: RuntimeMode, package: str, keys: str) -> tuple[str, str]:
    try:
        found = importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return "unavailable", f"the {package} package is not installed: pip install mcp-orchestrator"
    if not has_credentials(mode):
        return "unavailable", f"no credentials: set {keys}"
    return "ready", ""


def _sdk_info(mode: RuntimeMode, model: ModelName, package: str, keys: str) -> RuntimeInfo:
    status, detail = _sdk_status(mode, package, keys)
    return RuntimeInfo(
        mode=mode,
        model=model,
        status=status,
        detail=detail,
        capabilities={**_SDK_CAPABILITIES, "transport": "https-sse"},
    )


def worker_runtime_status(worker: WorkerRecord) -> str:
    """``ready`` or ``unavailable`` for the runtime this worker uses."""
    mode = worker.runtime_mode
    if mode == "cli":
        from mcp_orchestrator.runtimes.cli import adapter_status

        return str(adapter_status(worker.model)["status"])
    if mode == "mock":
        return "ready"
    package = "openai" if mode == "openai_sdk" else "google.genai"
    return _sdk_status(mode, package, "")[0]
