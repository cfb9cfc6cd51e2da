"""SDK probes: the runtime module and its vendor SDK import (in a child interpreter), credentials are present,
and with ``live`` one real minimal step through the runtime itself against the configured base URL.

An SDK runtime is optional (a fallback for its model's CLI) unless ``MCP_WORKER_RUNTIME_DEFAULT`` names it:
absent credentials then fail the probe, otherwise they only warn. Credentials are checked for presence;
the live step goes through the product's own runtime, so its failure classes are the ones a run would see.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from mcp_orchestrator.contracts import ModelName, RuntimeMode, WorkerRecord, utcnow
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway.router import has_credentials
from mcp_orchestrator.readiness._common import elapsed_ms, endpoint, make_result, run_command
from mcp_orchestrator.readiness.models import ProbeResult, ProbeStatus
from mcp_orchestrator.runtimes.base import OutputSink, StepContext

__all__ = ["SDKS", "SdkSpec", "probe_sdk"]


@dataclass(frozen=True)
class SdkSpec:
    """How to check one SDK runtime."""

    mode: RuntimeMode
    probe: str
    model: ModelName
    runtime_module: str
    runtime_class: str
    import_code: str
    install: str
    key_vars: tuple[str, ...]
    base_url_var: str
    default_base_url: str


SDKS: dict[str, SdkSpec] = {
    "openai_sdk": SdkSpec(
        mode="openai_sdk",
        probe="sdk:openai",
        model="codex_cli",
        runtime_module="mcp_orchestrator.runtimes.openai_sdk",
        runtime_class="OpenAISdkRuntime",
        import_code="import mcp_orchestrator.runtimes.openai_sdk, openai; print(openai.__version__)",
        install="pip install 'openai>=3,<4'",
        key_vars=("OPENAI_API_KEY",),
        base_url_var="OPENAI_BASE_URL",
        default_base_url="https://api.openai.com/v1",
    ),
    "google_sdk": SdkSpec(
        mode="google_sdk",
        probe="sdk:google",
        model="gemini_cli",
        runtime_module="mcp_orchestrator.runtimes.google_sdk",
        runtime_class="GoogleSdkRuntime",
        import_code="import mcp_orchestrator.runtimes.google_sdk; from google import genai; print(genai.__version__)",
        install="pip install 'google-genai>=3,<4'",
        key_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        base_url_var="GOOGLE_GEMINI_BASE_URL",
        default_base_url="https://generativelanguage.googleapis.com/",
    ),
}

_LIVE_PROMPT = "Readiness probe: answer with the single word ready."
_FIXES = {
    "auth": "check the key in {keys}: the endpoint refused it",
    "unavailable": "check that {base} is reachable from this host (or set {base_var})",
    "rate_limited": "the key works but is rate limited: retry later or raise the quota",
}


async def probe_sdk(
    mode: str, environ: Mapping[str, str], *, live: bool = False, time_limit: float = 30.0
) -> ProbeResult:
    """Probe one SDK runtime: importable, credentials present; ``live`` adds one real minimal step."""
    spec = SDKS[mode]
    run = await run_command([sys.executable, "-c", spec.import_code], env=environ, time_limit=time_limit)
    version = run.stdout.strip().splitlines()[-1] if run.exit_code == 0 and run.stdout.strip() else None
    base_url = environ.get(spec.base_url_var, "").strip() or spec.default_base_url
    key_var = next((k for k in spec.key_vars if environ.get(k, "").strip()), None)
    required = environ.get("MCP_WORKER_RUNTIME_DEFAULT", "") == mode
    facts: dict[str, Any] = {
        "baseUrl": endpoint(base_url),
        "credentialVariable": key_var,
        "requiredByDefaultRuntime": required,
    }
    evidence: dict[str, Any] = {
        "command": run.command,
        "exit_code": run.exit_code,
        "latency_ms": run.latency_ms,
        "version": version,
    }
    if version is None:
        why = run.error or (run.output.splitlines() or ["no output"])[-1][:300]
        return make_result(spec.probe, "fail", f"{spec.mode} runtime does not import: {why}", spec.install, **evidence)
    if not has_credentials(spec.mode, environ):
        keys = " or ".join(spec.key_vars)
        role = "the default runtime" if required else f"the fallback runtime of {spec.model} workers"
        return make_result(
            spec.probe,
            "fail" if required else "warn",
            f"{spec.mode} {version} imports, but no credentials ({keys} unset): {role} is unavailable",
            f"export {spec.key_vars[0]}=<your key>",
            facts=facts,
            **evidence,
        )
    summary = f"{spec.mode} {version} imports; credentials in {key_var}; endpoint {facts['baseUrl']}"
    if not live:
        return make_result(spec.probe, "ok", summary, facts=facts, **evidence)
    return await _live(spec, environ, time_limit, summary, facts, evidence)


async def _live(
    spec: SdkSpec, environ: Mapping[str, str], limit: float, summary: str, facts: dict[str, Any], ev: dict[str, Any]
) -> ProbeResult:
    """One real step through the runtime: the smallest request the product would send."""
    cls = getattr(importlib.import_module(spec.runtime_module), spec.runtime_class)  # the vendor SDK loads here
    runtime = cls(environ=dict(environ), connect_timeout=min(limit, 10.0))
    workdir = Path(tempfile.gettempdir())
    worker = WorkerRecord(
        name="readiness-probe",
        model=spec.model,
        runtime_mode=spec.mode,
        workdir=str(workdir),
        owner_agent_id="readiness",
        created_at=utcnow(),
    )

    async def report(_: str) -> None:
        return None

    ctx = StepContext("run_readiness", 0, _LIVE_PROMPT, worker, workdir, OutputSink(None), report)
    live_ev = {**ev, "command": f"{spec.mode} step: one streamed request to {facts['baseUrl']}", "exit_code": None}
    start = time.perf_counter()
    try:
        with anyio.fail_after(limit):
            outcome = await runtime.run_step(ctx)
    except RunFailure as e:
        live_ev["latency_ms"] = elapsed_ms(start)
        fix = _FIXES.get(e.failure_class, "see the message; the step failed as a run would").format(
            keys=" or ".join(spec.key_vars), base=facts["baseUrl"], base_var=spec.base_url_var
        )
        status: ProbeStatus = "warn" if e.failure_class == "rate_limited" else "fail"
        facts = {**facts, "failureClass": e.failure_class}
        return make_result(spec.probe, status, f"live call failed: {e}", fix, facts=facts, **live_ev)
    except TimeoutError:
        live_ev["latency_ms"] = elapsed_ms(start)
        fix = f"check that {facts['baseUrl']} answers (or set {spec.base_url_var})"
        summary = f"live call: no answer within {limit:g} s"
        return make_result(spec.probe, "fail", summary, fix, facts=facts, **live_ev)
    finally:
        ctx.output.close()
        await runtime.aclose()
    live_ev["latency_ms"] = elapsed_ms(start)
    usage = outcome.usage.total_tokens if outcome.usage else None
    facts = {**facts, "live": True, "answerChars": len(outcome.text), "totalTokens": usage}
    facts["model"] = outcome.details.get("model")
    return make_result(spec.probe, "ok", f"{summary}; live call answered", facts=facts, **live_ev)
