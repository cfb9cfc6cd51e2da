"""CLI probes: the binary (found, ``--version``), its configuration and its credentials, as a worker would see them.

Everything is read from the environment a worker really gets (``worker_env``: the allowlist plus
``MCP_ORCHESTRATOR_WORKER_ENV``), so a key the server has but a worker would not see is reported.
Credentials are checked for presence only: a variable's *name* or a file's path is recorded, never
a value. Configuration files are parsed, not changed. Facts per CLI come from
``/work/shared/reference/worker-clis.md``: codex reads ``$CODEX_HOME/config.toml`` (default
``~/.codex``); gemini reads ``$GEMINI_CLI_HOME/.gemini/settings.json`` (default ``~``) and exits 41
when ``GOOGLE_GEMINI_BASE_URL`` is set without API-key auth selected; claude keeps its state in
``$CLAUDE_CONFIG_DIR`` (default ``~/.claude``).
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_orchestrator.readiness._common import endpoint, home_of, make_result, run_command
from mcp_orchestrator.readiness.models import ProbeResult, ProbeStatus
from mcp_orchestrator.runtimes.cli.capabilities import find_binary
from mcp_orchestrator.runtimes.cli.env import worker_env
from mcp_orchestrator.runtimes.cli.templates import ADAPTERS, Adapter

__all__ = ["probe_cli"]

_VERSION_RE = re.compile(r"\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.-]+)?")


@dataclass
class _Findings:
    """What one CLI's configuration and credentials look like; problems fail, caveats warn."""

    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    credential: str | None = None

    def problem(self, text: str, fix: str) -> None:
        self.problems.append(text)
        self.fixes.append(fix)

    def caveat(self, text: str, fix: str) -> None:
        self.caveats.append(text)
        self.fixes.append(fix)


def _env_credential(f: _Findings, worker: Mapping[str, str], names: Iterable[str]) -> bool:
    for name in names:
        if worker.get(name, "").strip():
            f.credential = f"env {name}"
            return True
    return False


def _file_credential(f: _Findings, path: Path, what: str) -> bool:
    if path.is_file():
        f.credential = f"file {path} ({what})"
        return True
    return False


def _missing(f: _Findings, server: Mapping[str, str], names: list[str], fix: str) -> None:
    """Report absent credentials; a variable the server has but the allowlist drops gets its own fix."""
    dropped = [n for n in names if server.get(n, "").strip()]
    if dropped:
        f.problem(
            f"{dropped[0]} is set for the server but not passed to workers",
            f"add it to the worker allowlist: export MCP_ORCHESTRATOR_WORKER_ENV={dropped[0]}",
        )
    else:
        f.problem(f"no credentials ({' / '.join(names)} unset, no login file)", fix)
    f.facts["credentialVariables"] = names


def _codex(worker: Mapping[str, str], server: Mapping[str, str]) -> _Findings:
    f = _Findings()
    codex_home = worker.get("CODEX_HOME", "").strip()
    home = Path(codex_home) if codex_home else home_of(worker) / ".codex"
    config = home / "config.toml"
    f.facts.update(configDir=str(home), configFile=str(config), configPresent=config.is_file())
    key_vars = ["OPENAI_API_KEY", "CODEX_API_KEY"]
    if not config.is_file():
        f.caveat(f"no {config}: codex runs on its defaults", f"create {config} (model, model_provider)")
    else:
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            f.problem(f"{config} does not parse: {e}", f"fix the TOML syntax in {config}")
            return f
        provider = data.get("model_provider")
        f.facts["modelProvider"] = provider
        table = data.get("model_providers", {}).get(provider, {}) if isinstance(provider, str) else {}
        env_key = table.get("env_key") if isinstance(table, dict) else None
        if isinstance(env_key, str) and env_key:
            key_vars = [env_key]  # a custom provider reads its key from this variable only
        if isinstance(table, dict) and isinstance(table.get("base_url"), str):
            f.facts["baseUrl"] = endpoint(table["base_url"])
    if not (_env_credential(f, worker, key_vars) or _file_credential(f, home / "auth.json", "codex login")):
        _missing(f, server, key_vars, f"export {key_vars[0]}=<your key> (or run `codex login`)")
    return f


def _gemini(worker: Mapping[str, str], server: Mapping[str, str]) -> _Findings:
    f = _Findings()
    cli_home = worker.get("GEMINI_CLI_HOME", "").strip()
    home = (Path(cli_home) if cli_home else home_of(worker)) / ".gemini"
    settings = home / "settings.json"
    f.facts.update(configDir=str(home), configFile=str(settings), configPresent=settings.is_file())
    selected: Any = None
    if not settings.is_file():
        f.caveat(f"no {settings}: gemini runs on its defaults", f"create {settings} (security.auth.selectedType)")
    else:
        try:
            data = json.loads(settings.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            f.problem(f"{settings} does not parse: {e}", f"fix the JSON syntax in {settings}")
            return f
        auth = data.get("security", {}).get("auth", {}) if isinstance(data, dict) else {}
        selected = auth.get("selectedType") if isinstance(auth, dict) else None
        f.facts["selectedAuthType"] = selected
    base_url = worker.get("GOOGLE_GEMINI_BASE_URL", "").strip()
    if base_url:
        f.facts["baseUrl"] = endpoint(base_url)
        if selected != "gemini-api-key":
            f.problem(
                "GOOGLE_GEMINI_BASE_URL is set but API-key auth is not selected: headless gemini exits 41",
                f'set "security": {{"auth": {{"selectedType": "gemini-api-key"}}}} in {settings}',
            )
    names = ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    if not (_env_credential(f, worker, names) or _file_credential(f, home / "oauth_creds.json", "Google sign-in")):
        _missing(f, server, names, "export GEMINI_API_KEY=<your key> (or sign in once with `gemini`)")
    return f


def _claude(worker: Mapping[str, str], server: Mapping[str, str]) -> _Findings:
    f = _Findings()
    config_dir = worker.get("CLAUDE_CONFIG_DIR", "").strip()
    home = Path(config_dir) if config_dir else home_of(worker) / ".claude"
    f.facts.update(configDir=str(home), configPresent=home.is_dir())
    if not home.is_dir():
        f.caveat(f"no {home}: claude creates it on its first run", f"mkdir -p {home}")
    base_url = worker.get("ANTHROPIC_BASE_URL", "").strip()
    if base_url:
        f.facts["baseUrl"] = endpoint(base_url)
    names = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"]
    cloud = [n for n in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX") if worker.get(n, "") not in ("", "0")]
    if cloud:
        f.credential = f"cloud provider ({cloud[0]})"
    elif not (_env_credential(f, worker, names) or _file_credential(f, home / ".credentials.json", "claude login")):
        _missing(f, server, names, "export ANTHROPIC_API_KEY=<your key> (or run `claude setup-token`)")
    return f


_CHECKS: dict[str, Callable[[Mapping[str, str], Mapping[str, str]], _Findings]] = {
    "codex_cli": _codex,
    "gemini_cli": _gemini,
    "claude_cli": _claude,
}


def _install(adapter: Adapter) -> str:
    return f"npm install -g {adapter.npm_package}@{adapter.pinned_version} (or set {adapter.bin_env}=/path/to/binary)"


async def probe_cli(
    model: str, environ: Mapping[str, str], extra_env: tuple[str, ...] = (), *, time_limit: float = 30.0
) -> ProbeResult:
    """Probe ``model``'s CLI: binary and ``--version``, configuration, credentials (presence only)."""
    adapter = ADAPTERS[model]
    name = f"cli:{adapter.name}"
    binary = find_binary(model, environ)
    if binary is None:
        where = f"{adapter.bin_env} does not name an executable" if environ.get(adapter.bin_env) else "not on PATH"
        return make_result(
            name,
            "fail",
            f"`{adapter.binary}` not found ({where})",
            _install(adapter),
            facts={"binEnv": adapter.bin_env, "pinnedVersion": adapter.pinned_version},
        )
    # PATH (node for the launchers), no self-relaunch, no auto-update, and a scratch HOME: even `gemini --version`
    # leaves a file in ~/.gemini, and a probe must leave the user's homes as it found them.
    with tempfile.TemporaryDirectory(prefix="mcp-orch-version-") as scratch:
        version_env = {
            "PATH": environ.get("PATH", ""),
            "HOME": scratch,
            "GEMINI_CLI_NO_RELAUNCH": "true",
            "DISABLE_AUTOUPDATER": "1",
        }
        run = await run_command([binary, "--version"], env=version_env, time_limit=time_limit)
    match = _VERSION_RE.search(run.output)
    evidence: dict[str, Any] = {
        "command": run.command,
        "exit_code": run.exit_code,
        "latency_ms": run.latency_ms,
        "version": match.group(0) if match else None,
        "path": binary,
    }
    if run.exit_code != 0 or match is None:
        why = run.error or f"exited {run.exit_code}: {run.output[:200]!r}"
        reinstall = f"reinstall: {_install(adapter)}"
        return make_result(name, "fail", f"`{adapter.binary} --version` failed: {why}", reinstall, **evidence)
    worker = worker_env(model, environ, extra_env)
    found = _CHECKS[model](worker, environ)
    facts = {**found.facts, "pinnedVersion": adapter.pinned_version, "credentialSource": found.credential}
    if match.group(0) != adapter.pinned_version:
        found.caveat(
            f"version {match.group(0)} is not the tested {adapter.pinned_version}",
            f"npm install -g {adapter.npm_package}@{adapter.pinned_version}",
        )
    status: ProbeStatus = "fail" if found.problems else "warn" if found.caveats else "ok"
    parts = [f"{adapter.binary} {match.group(0)} at {binary}"]
    parts += found.problems + found.caveats
    if found.credential:
        parts.append(f"credentials: {found.credential}")
    return make_result(name, status, "; ".join(parts), "; ".join(found.fixes), facts=facts, **evidence)
