"""Whether any worker process polls a step queue: a local activity of the run's workflow, for routing.

A step whose first backend has another candidate asks before it is scheduled there: a backend no worker
process polls falls back at once instead of waiting ``queue_seconds`` for a pick-up that never comes. The
answer is the Temporal server's (``describe_task_queue``: the pollers it saw lately), read by the worker
process that executes the workflow, and kept in the run's history (a local activity's marker), so a replay
routes the same way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

__all__ = ["POLLED_ACTIVITY", "QueueProbe"]

log = logging.getLogger(__name__)

POLLED_ACTIVITY = "mcp-orchestrator.polled"


class QueueProbe:
    """The local activity that says whether a step queue has pollers."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    @activity.defn(name=POLLED_ACTIVITY)
    async def polled(self, queue: str) -> bool:
        """``True`` when a worker process polled ``queue`` lately (or the cluster did not say: then the step's
        queue timeout decides)."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        request = DescribeTaskQueueRequest(
            namespace=self.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
        try:
            found = await self.client.workflow_service.describe_task_queue(request, timeout=timedelta(seconds=3))
        except RPCError as e:
            log.warning("cannot tell whether %s has workers (%s): the step is scheduled there", queue, e)
            return True
        return bool(found.pollers)
