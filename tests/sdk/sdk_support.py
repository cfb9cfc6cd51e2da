"""Running the SDK runtimes in tests: loopback environments, step contexts, the envelope corpus."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from support.model_server import Api, Envelope, ModelServer

from mcp_orchestrator.contracts import WorkerRecord, utcnow
from mcp_orchestrator.runtimes.base import OutputSink, StepContext, StepOutcome, WorkerRuntime
from mcp_orchestrator.runtimes.google_sdk import GoogleSdkRuntime
from mcp_orchestrator.runtimes.openai_sdk import OpenAISdkRuntime

__all__ = ["API", "CORPUS", "KEY", "MODES", "Case", "Mode", "Sdk", "load_corpus"]

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "fixtures" / "envelopes"
# A recognisable key: no spool, quarantine or message may ever contain it.
KEY = f"sk-test-{secrets.token_hex(12)}"
Mode = Literal["openai_sdk", "google_sdk"]
MODES: tuple[Mode, ...] = ("openai_sdk", "google_sdk")
API: dict[Mode, Api] = {"openai_sdk": "openai", "google_sdk": "gemini"}


@dataclass
class Sdk:
    """Builds step contexts and runs steps of one SDK runtime against the loopback server."""

    mode: Mode
    server: ModelServer
    tmp: Path
    reports: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def api(self) -> Api:
        """The loopback API this runtime talks to."""
        return API[self.mode]

    def environ(self, **overrides: str) -> dict[str, str]:
        """Key and base URL pointing at the loopback server (``overrides`` replace or add variables)."""
        if self.mode == "openai_sdk":
            env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": self.server.openai_base_url}
        else:
            env = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": self.server.url}
        env.update(overrides)
        return env

    def runtime(self, environ: dict[str, str] | None = None, **kwargs: Any) -> WorkerRuntime:
        """A runtime over ``environ`` (default: :meth:`environ`)."""
        cls = OpenAISdkRuntime if self.mode == "openai_sdk" else GoogleSdkRuntime
        return cls(environ=self.environ() if environ is None else environ, **kwargs)

    def context(self, prompt: str, *, model_name: str | None = None, **kwargs: Any) -> StepContext:
        """A step context with a real, spooling output sink."""
        self.counter += 1
        workdir = self.tmp / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        worker = WorkerRecord(
            name=f"w{self.counter}",
            model="codex_cli" if self.mode == "openai_sdk" else "gemini_cli",
            runtime_mode=self.mode,
            workdir=str(workdir),
            owner_agent_id="tests",
            created_at=utcnow(),
            model_name=model_name,
            session_id=kwargs.pop("session_id", None),
        )

        async def report(text: str) -> None:
            self.reports.append(text)

        return StepContext(
            run_id=f"run_{self.counter:020x}",
            step_index=self.counter,
            prompt=prompt,
            worker=worker,
            workdir=workdir,
            output=OutputSink(self.tmp / "outputs" / f"step-{self.counter}.log"),
            report=report,
            **kwargs,
        )

    async def run(self, prompt: str, *, runtime: WorkerRuntime | None = None, **kwargs: Any) -> StepOutcome:
        """Run one step to completion (closing its output)."""
        ctx = self.context(prompt, **kwargs)
        try:
            return await (runtime or self.runtime()).run_step(ctx)
        finally:
            ctx.output.close()

    def files(self) -> list[Path]:
        """Every spool and quarantine file written so far."""
        return sorted(p for p in (self.tmp / "outputs").glob("*") if p.is_file())


@dataclass(frozen=True)
class Case:
    """One corpus entry: a raw response and what each runtime must make of it."""

    name: str
    description: str
    apis: tuple[Api, ...]
    envelope: Envelope
    expect: str
    reason: dict[str, str]

    def reason_for(self, api: Api) -> str:
        """The text the failure message must contain for ``api``."""
        return self.reason.get(api, self.reason.get("both", ""))


def _case(path: Path) -> Case:
    spec = json.loads(path.read_text())
    body = (path.parent / spec["bodyFile"]).read_bytes() if "bodyFile" in spec else spec.get("body", "").encode()
    api = spec.get("api", "both")
    apis: tuple[Api, ...] = ("openai", "gemini") if api == "both" else (api,)
    reason = spec.get("reasonContains", "")
    envelope = Envelope(
        status=spec.get("status", 200),
        body=body,
        content_type=spec.get("contentType"),
        framing=spec.get("framing", "length"),
        headers=tuple((k, v) for k, v in spec.get("headers", {}).items()),
        declared_length=spec.get("declaredLength"),
        chunk_size=spec.get("chunkSize", 0),
    )
    return Case(
        name=path.stem,
        description=spec["description"],
        apis=apis,
        envelope=envelope,
        expect=spec.get("expect", "bad_output"),
        reason=reason if isinstance(reason, dict) else {"both": reason},
    )


def load_corpus() -> list[Case]:
    """Every ``fixtures/envelopes/*.json`` entry, by name."""
    return [_case(p) for p in sorted(CORPUS.glob("*.json"))]
