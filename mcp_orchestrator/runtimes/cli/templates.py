"""Command templates: the argv each CLI runs for one step, chosen by model, role and session.

The prompt goes as the last argument, guarded against being read as a flag (``--`` for codex
and claude, ``--prompt=`` for gemini). A prompt too long for one argument (Linux caps one at
128 KiB) goes on stdin, which the runtime then closes; otherwise stdin is ``/dev/null``.

Roles: a role in ``READ_ONLY_ROLES`` (``reviewer`` among them) runs read-only; any other role
is a writer that may write inside its workdir.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ADAPTERS",
    "MAX_ARG_PROMPT_BYTES",
    "READ_ONLY_ROLES",
    "Adapter",
    "CliModel",
    "Invocation",
    "build_invocation",
    "is_read_only",
]

CliModel = Literal["codex_cli", "gemini_cli", "claude_cli"]

READ_ONLY_ROLES: frozenset[str] = frozenset(
    {"reviewer", "review", "auditor", "planner", "reader", "read-only", "readonly", "adjudicator", "redteam"}
)

# Linux's MAX_ARG_STRLEN is 128 KiB per argument; stay well below it.
MAX_ARG_PROMPT_BYTES = 96 * 1024


@dataclass(frozen=True)
class Adapter:
    """Static facts about one CLI: how to find it, install it and which modes it has."""

    model: CliModel
    name: str
    binary: str
    bin_env: str
    npm_package: str
    pinned_version: str
    sandbox_modes: tuple[str, ...]
    env_prefixes: tuple[str, ...]
    forced_env: dict[str, str] = field(default_factory=dict)

    @property
    def install_hint(self) -> str:
        """How to make the binary available."""
        return (
            f"Install it with `npm install -g {self.npm_package}@{self.pinned_version}` (or put `{self.binary}` on "
            f"PATH), or set {self.bin_env} to the binary's path."
        )


ADAPTERS: dict[str, Adapter] = {
    "codex_cli": Adapter(
        model="codex_cli",
        name="codex",
        binary="codex",
        bin_env="MCP_ORCHESTRATOR_CODEX_BIN",
        npm_package="@openai/codex",
        pinned_version="0.169.0",
        sandbox_modes=("read-only", "workspace-write", "danger-full-access"),
        env_prefixes=("CODEX_", "OPENAI_"),
    ),
    "gemini_cli": Adapter(
        model="gemini_cli",
        name="gemini",
        binary="gemini",
        bin_env="MCP_ORCHESTRATOR_GEMINI_BIN",
        npm_package="@google/gemini-cli",
        pinned_version="0.61.0",
        sandbox_modes=("default", "auto_edit", "yolo", "plan"),
        env_prefixes=("GEMINI_", "GOOGLE_"),
        # One process instead of a self-relaunched child, so SIGTERM ends it at once.
        forced_env={"GEMINI_CLI_NO_RELAUNCH": "true"},
    ),
    "claude_cli": Adapter(
        model="claude_cli",
        name="claude",
        binary="claude",
        bin_env="MCP_ORCHESTRATOR_CLAUDE_BIN",
        npm_package="@anthropic-ai/claude-code",
        pinned_version="2.1.330",
        sandbox_modes=("default", "acceptEdits", "bypassPermissions", "plan"),
        env_prefixes=("ANTHROPIC_", "CLAUDE_"),
        # A headless worker must never replace its own binary mid-run.
        forced_env={"DISABLE_AUTOUPDATER": "1"},
    ),
}


def is_read_only(role: str) -> bool:
    """True when ``role`` must not write (``reviewer`` and the other read-only roles)."""
    return role.strip().lower() in READ_ONLY_ROLES


@dataclass(frozen=True)
class Invocation:
    """One command line: argv, the flags worth recording, and the prompt on stdin if it is too long."""

    argv: list[str]
    flags: list[str]
    read_only: bool
    resumed: bool
    stdin: bytes | None = None


def build_invocation(
    model: str,
    binary: str,
    prompt: str,
    *,
    role: str,
    session_id: str | None = None,
    model_name: str | None = None,
    extra_flags: list[str] | None = None,
) -> Invocation:
    """The argv for one step of ``model``; ``session_id`` continues that CLI session; ``extra_flags`` go
    before the prompt (e.g. the worker-home isolation flags)."""
    read_only = is_read_only(role)
    on_stdin = len(prompt.encode()) > MAX_ARG_PROMPT_BYTES
    if model == "codex_cli":
        flags = ["exec", "--json", "--skip-git-repo-check", "-s", "read-only" if read_only else "workspace-write"]
        if model_name:
            flags += ["-m", model_name]
        if session_id:
            flags += ["resume", session_id]
        tail = ["-"] if on_stdin else ["--", prompt]
    elif model == "gemini_cli":
        flags = ["-o", "stream-json", "--skip-trust", "--approval-mode", "default" if read_only else "yolo"]
        if model_name:
            flags += ["-m", model_name]
        if session_id:
            flags += ["--resume", session_id]
        # Without -p and with a pipe on stdin, gemini reads the prompt from stdin.
        tail = [] if on_stdin else [f"--prompt={prompt}"]
    elif model == "claude_cli":
        flags = ["-p", "--output-format", "stream-json", "--verbose"]
        if read_only:
            flags += ["--permission-mode", "plan"]
        else:
            # Edits inside the workdir are accepted; shell commands are allowed so a writer can run tests.
            flags += ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
        if model_name:
            flags += ["--model", model_name]
        if session_id:
            flags += ["--resume", session_id]
        tail = [] if on_stdin else ["--", prompt]
    else:
        raise ValueError(f"model {model!r} has no CLI adapter")
    if extra_flags:
        # codex takes its options before `resume <id>`; the others anywhere before the prompt.
        at = flags.index("resume") if model == "codex_cli" and "resume" in flags else len(flags)
        flags = flags[:at] + list(extra_flags) + flags[at:]
    return Invocation(
        argv=[binary, *flags, *tail],
        flags=flags,
        read_only=read_only,
        resumed=session_id is not None,
        stdin=prompt.encode() if on_stdin else None,
    )
