"""What each CLI adapter can do, where its binary is, and whether it is ready.

Binary discovery looks at ``MCP_ORCHESTRATOR_CODEX_BIN`` / ``_GEMINI_BIN`` / ``_CLAUDE_BIN``
first, then ``PATH``; nothing else (a development checkout's ``.tools`` is not searched).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mcp_orchestrator.runtimes.cli.templates import ADAPTERS, Adapter
from mcp_orchestrator.runtimes.cli.versions import binary_version

__all__ = ["AdapterCapabilities", "adapter_status", "cli_capabilities", "find_binary", "get_adapter"]


class AdapterCapabilities(BaseModel):
    """The capabilities contract of one CLI adapter."""

    model_config = ConfigDict(frozen=True)

    model: str
    binary: str
    npm_package: str
    pinned_version: str
    jsonl_native: bool
    schema_strict: bool
    transport: Literal["subprocess-jsonl"]
    supports_resume: bool
    sandbox_modes: list[str]
    read_only_mode: str
    writer_mode: str


_CAPABILITIES: dict[str, dict[str, Any]] = {
    # codex validates the final message against --output-schema; its sandbox is enforced by the OS.
    "codex_cli": {"schema_strict": True, "read_only_mode": "-s read-only", "writer_mode": "-s workspace-write"},
    "gemini_cli": {
        "schema_strict": False,
        "read_only_mode": "--approval-mode default",
        "writer_mode": "--approval-mode yolo",
    },
    "claude_cli": {
        "schema_strict": False,
        "read_only_mode": "--permission-mode plan",
        "writer_mode": "--permission-mode acceptEdits --allowedTools Bash",
    },
}


def get_adapter(model: str) -> Adapter:
    """The adapter of ``model``; ``KeyError`` names the models that have one."""
    try:
        return ADAPTERS[model]
    except KeyError:
        raise KeyError(f"model {model!r} has no CLI adapter (known: {', '.join(ADAPTERS)})") from None


def cli_capabilities(model: str) -> dict[str, Any]:
    """The capabilities contract of ``model``'s adapter as a JSON-ready dict."""
    adapter = get_adapter(model)
    caps = AdapterCapabilities(
        model=model,
        binary=adapter.binary,
        npm_package=adapter.npm_package,
        pinned_version=adapter.pinned_version,
        jsonl_native=True,
        transport="subprocess-jsonl",
        supports_resume=True,
        sandbox_modes=list(adapter.sandbox_modes),
        **_CAPABILITIES[model],
    )
    return caps.model_dump()


def find_binary(model: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The CLI binary for ``model``: its ``MCP_ORCHESTRATOR_*_BIN`` variable, else ``PATH``; ``None`` if absent."""
    env = os.environ if environ is None else environ
    adapter = get_adapter(model)
    override = env.get(adapter.bin_env, "").strip()
    if override:
        path = os.path.expanduser(override)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(adapter.binary, path=env.get("PATH", os.defpath))


def adapter_status(model: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"status": "ready"|"unavailable", "binary", "version", "detail"}`` for ``model``'s CLI."""
    adapter = get_adapter(model)
    binary = find_binary(model, environ)
    if binary is None:
        env = os.environ if environ is None else environ
        where = (
            f"{adapter.bin_env}={env[adapter.bin_env]!r} is not an executable file"
            if env.get(adapter.bin_env)
            else f"`{adapter.binary}` is not on PATH"
        )
        return {"status": "unavailable", "binary": None, "version": None, "detail": f"{where}. {adapter.install_hint}"}
    try:
        mtime = os.stat(binary).st_mtime_ns
    except OSError as e:
        return {"status": "unavailable", "binary": binary, "version": None, "detail": str(e)}
    version, problem = binary_version(binary, mtime)
    if version is None:
        return {"status": "unavailable", "binary": binary, "version": None, "detail": problem}
    detail = "" if version == adapter.pinned_version else f"tested with {adapter.pinned_version}"
    return {"status": "ready", "binary": binary, "version": version, "detail": detail}
