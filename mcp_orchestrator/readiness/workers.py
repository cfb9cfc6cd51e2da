"""Worker probes, one per model: its capabilities contract holds, and a runtime that can run it is ready.

The contract check is real: the flags each CLI adapter promises for a read-only and a writer role
(``readOnlyMode`` / ``writerMode``) must be the flags ``build_invocation`` really passes, their modes
must be among ``sandboxModes``, a resumable adapter must build a resuming command, and every runtime
the policy allows for the model must be registered. Readiness comes from the CLI and SDK probes:
the runtime a new worker would get (``MCP_WORKER_RUNTIME_DEFAULT`` when compatible, else the
model's natural one) ready is ``ok``; only another one ready is ``warn``; none is ``fail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from mcp_orchestrator.contracts import RuntimeMode
from mcp_orchestrator.readiness._common import make_result
from mcp_orchestrator.readiness.models import ProbeResult, ProbeStatus
from mcp_orchestrator.readiness.sdks import SDKS
from mcp_orchestrator.runtimes import _RUNTIMES
from mcp_orchestrator.runtimes.cli.capabilities import AdapterCapabilities, cli_capabilities
from mcp_orchestrator.runtimes.cli.templates import ADAPTERS, build_invocation
from mcp_orchestrator.service.policy import COMPATIBLE, select_runtime

__all__ = ["probe_worker"]


def _contains(flags: list[str], expected: list[str]) -> bool:
    n = len(expected)
    return any(flags[i : i + n] == expected for i in range(len(flags) - n + 1))


def _cli_contract(model: str) -> tuple[dict[str, Any], list[str]]:
    """The adapter's capabilities and every way they disagree with the argv it builds."""
    try:
        caps = AdapterCapabilities.model_validate(cli_capabilities(model))
    except (KeyError, ValidationError) as e:
        return {}, [f"capabilities do not validate: {e}"]
    problems = []
    for role, promised in (("reviewer", caps.read_only_mode), ("writer", caps.writer_mode)):
        flags = build_invocation(model, caps.binary, "probe", role=role).flags
        tokens = promised.split()
        if not _contains(flags, tokens):
            problems.append(f"a {role} runs with {flags}, not the promised {promised!r}")
        if len(tokens) < 2 or tokens[1] not in caps.sandbox_modes:
            problems.append(f"{role} mode {promised!r} is not one of sandboxModes {caps.sandbox_modes}")
    if caps.supports_resume and not build_invocation(model, caps.binary, "p", role="writer", session_id="s").resumed:
        problems.append("supportsResume, but a session id does not build a resuming command")
    return {to_camel(k): v for k, v in caps.model_dump().items()}, problems


def _ready(mode: RuntimeMode, model: str, results: Mapping[str, ProbeResult]) -> bool:
    if mode == "mock":
        return True  # in-process, needs nothing
    if mode == "cli":
        found = results.get(f"cli:{ADAPTERS[model].name}")
        return found is not None and found.status != "fail"
    sdk = results.get(SDKS[mode].probe)
    if sdk is None:
        return False
    return sdk.status == "ok" or sdk.evidence.facts.get("failureClass") == "rate_limited"


def probe_worker(
    model: str, results: Mapping[str, ProbeResult], default_runtime: RuntimeMode | None = None
) -> ProbeResult:
    """Probe what a ``model`` worker can do and whether it can run now (from the CLI and SDK probes)."""
    name = f"worker:{model}"
    modes = COMPATIBLE[model]
    problems = [f"runtime {m!r} is allowed for {model} but not registered" for m in modes if m not in _RUNTIMES]
    capabilities: dict[str, Any] = {}
    if model in ADAPTERS:
        capabilities, found = _cli_contract(model)
        problems += found
    chosen = select_runtime(model, None, default_runtime)
    real = [m for m in modes if m != "mock" or model == "mock"]
    ready = [m for m in real if _ready(m, model, results)]
    facts = {"runtimes": list(modes), "ready": ready, "defaultRuntime": chosen, "capabilities": capabilities}
    status: ProbeStatus
    if problems:
        status, fix = "fail", "the adapter's capabilities contract and its command templates disagree: fix one"
        summary = f"{model}: " + "; ".join(problems)
    elif chosen in ready:
        status, fix = "ok", ""
        summary = f"{model}: new workers run on {chosen} (ready); ready runtimes: {', '.join(ready)}"
    elif ready:
        status = "warn"
        fix = f"fix the {chosen} runtime (see its probe), or spawn workers with runtimeMode={ready[0]}"
        summary = f"{model}: the default {chosen} runtime is not ready; only {', '.join(ready)} can run it"
    else:
        status, fix = "fail", f"make one of {', '.join(real)} ready (see the cli:/sdk: probes)"
        summary = f"{model}: no runtime can run it now (allowed: {', '.join(real)})"
    return make_result(name, status, summary, fix, facts=facts)
