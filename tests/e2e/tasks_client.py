"""A test client that speaks the MCP Tasks extension (SEP-2663) on the SDK's own client.

It declares ``io.modelcontextprotocol/tasks`` (the SDK then sends it in every request's capabilities on the
2026-07-28 wire), claims the ``resultType: "task"`` shape of ``tools/call``, sends ``tasks/get``,
``tasks/update`` and ``tasks/cancel`` (with the ``Mcp-Name`` header the spec asks for), listens for
``notifications/tasks`` and polls as ``pollIntervalMs`` says.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio
import mcp_types as t
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, NotificationBinding, ResultClaim
from pydantic import BaseModel, ConfigDict, TypeAdapter

__all__ = ["EXTENSION", "CreateTask", "TasksClient", "cancel", "get", "listen", "poll", "start", "update"]

EXTENSION = "io.modelcontextprotocol/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_ANY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


class CreateTask(t.Result):
    """A ``CreateTaskResult``: the task fields, extra keys kept."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None
    created_at: str
    last_updated_at: str


class TaskNote(BaseModel):
    """``notifications/tasks`` params (a whole ``DetailedTask``)."""

    model_config = ConfigDict(extra="allow")
    taskId: str  # noqa: N815 (the wire name)
    status: str


class _TaskRequest(t.Request[dict[str, Any], str]):
    name_param: ClassVar[str | None] = "taskId"


class TasksClient(ClientExtension):
    """The client side of the extension; notifications land in ``notes``."""

    identifier = EXTENSION

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []

    def claims(self) -> list[ResultClaim[Any]]:
        """Claim the task shape; ``Client.call_tool`` then polls it to the end."""
        return [ResultClaim(result_type="task", model=CreateTask, resolve=self._resolve)]

    def notifications(self) -> list[NotificationBinding[Any]]:
        """Collect ``notifications/tasks``."""
        return [NotificationBinding(method="notifications/tasks", params_type=TaskNote, handler=self._note)]

    async def _note(self, note: TaskNote) -> None:
        self.notes.append(note.model_dump())

    async def _resolve(self, task: CreateTask, ctx: ClaimContext) -> t.CallToolResult:
        final = await _poll(ctx.session, task.task_id)
        return t.CallToolResult.model_validate(final["result"])


async def _request(session: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await session.send_request(_TaskRequest(method=method, params=params), _ANY)
    return result


async def start(client: Client, tool: str, args: dict[str, Any]) -> CreateTask | t.CallToolResult:
    """Call a tool and keep a task handle as it came (no polling)."""
    result = await client.session.call_tool(tool, args, allow_claimed=True)
    assert isinstance(result, CreateTask | t.CallToolResult), result
    return result


async def get(client: Client, task_id: str) -> dict[str, Any]:
    """``tasks/get``."""
    return await _request(client.session, "tasks/get", {"taskId": task_id})


async def update(client: Client, task_id: str, responses: dict[str, Any]) -> dict[str, Any]:
    """``tasks/update``."""
    return await _request(client.session, "tasks/update", {"taskId": task_id, "inputResponses": responses})


async def cancel(client: Client, task_id: str) -> dict[str, Any]:
    """``tasks/cancel``."""
    return await _request(client.session, "tasks/cancel", {"taskId": task_id})


async def _poll(session: Any, task_id: str) -> dict[str, Any]:
    while True:
        task = await _request(session, "tasks/get", {"taskId": task_id})
        if task["status"] in TERMINAL:
            return task
        await anyio.sleep(task.get("pollIntervalMs", 1000) / 1000)  # the interval the server asks for


async def poll(client: Client, task_id: str) -> dict[str, Any]:
    """``tasks/get`` every ``pollIntervalMs`` until the task is terminal; the last answer."""
    return await _poll(client.session, task_id)


async def listen(client: Client, task_ids: list[str]) -> dict[str, Any]:
    """A ``subscriptions/listen`` stream for ``task_ids``; its final result (notifications go to the extension)."""
    request = t.Request[dict[str, Any], str](
        method="subscriptions/listen", params={"notifications": {"taskIds": task_ids}}
    )
    result: dict[str, Any] = await client.session.send_request(request, _ANY)
    return result
