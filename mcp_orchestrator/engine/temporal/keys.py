"""Idempotency keys shared by the cluster: one key workflow per (agentId, idempotencyKey) of a deployment.

Claiming a key is starting the workflow ``<prefix>.key.<sha(agentId NUL key)>`` with the runId that the key
names in its memo. Temporal starts a workflow id at most once (the conflict policy ``FAIL`` while it runs, the
reuse policy ``REJECT_DUPLICATE`` once it has closed), so of any number of servers dispatching the same key at
once exactly one claims it; every other one is refused and reads the runId from the key workflow's memo by
``describe``, which the Temporal server answers itself (no worker process is asked). The key workflow does
nothing: a worker completes it at once, and the cluster keeps the closed workflow, and with it the key, for the
namespace's retention.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from mcp_orchestrator.store.index import sha

__all__ = ["KEY_WORKFLOW", "KeyWorkflow", "claim_key", "key_id"]

KEY_WORKFLOW = "mcp-orchestrator.key"


def key_id(prefix: str, agent_id: str, key: str) -> str:
    """The key workflow's id of ``agent_id``'s ``key`` in the deployment ``prefix`` (the local store's hash)."""
    return f"{prefix}.key.{sha(agent_id + chr(0) + key)}"


@workflow.defn(name=KEY_WORKFLOW, sandboxed=False)
class KeyWorkflow:
    """A claimed key: its memo names the run; closed at once, it holds the key for the namespace's retention."""

    @workflow.run
    async def run(self) -> None:
        """Nothing to do: the workflow's existence is the claim."""


async def claim_key(client: Client, prefix: str, task_queue: str, agent_id: str, key: str, run_id: str) -> str:
    """The runId that holds the key: ``run_id`` when this call claimed it, else the earlier claim's."""
    wid = key_id(prefix, agent_id, key)
    for _ in range(3):  # a key whose retention ends between the refused start and the describe: claim again
        try:
            await client.start_workflow(
                KEY_WORKFLOW,
                id=wid,
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo={"runId": run_id, "agentId": agent_id},
            )
            return run_id
        except WorkflowAlreadyStartedError:
            pass
        try:
            found = await client.get_workflow_handle(wid).describe()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        earlier = (await found.memo()).get("runId")
        if isinstance(earlier, str) and earlier:
            return earlier
        raise RPCError(f"the key workflow {wid} names no run", RPCStatusCode.DATA_LOSS, b"")
    raise RPCError(f"the key workflow {wid} kept vanishing", RPCStatusCode.ABORTED, b"")
