"""Wire formats of the loopback model server: answers, tool calls, errors and usage per API.

Each builder returns a JSON payload (a dict) for a non-streaming request, or an iterator of
ready-to-send SSE events (bytes) for a streaming one. A streamed answer sends its text in the
pieces ``Answer.deltas`` names (one piece by default); with ``Answer.hold`` the iterator yields
the :data:`HOLD` marker after the first piece, where the server pauses until the test releases it.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model_server import Api, ToolCall

__all__ = [
    "HOLD",
    "Answer",
    "anthropic",
    "auxiliary_answer",
    "error_body",
    "gemini",
    "model_name",
    "openai_chat",
    "openai_responses",
    "tool_call",
    "wants_stream",
]

Payload = dict[str, Any] | Iterator[bytes]

# Yielded (by identity) between the first and the second text piece of a held stream.
HOLD = b"<hold>"


@dataclass
class Answer:
    """What one turn says, independent of the API."""

    text: str
    tool: tuple[str, dict[str, Any]] | None
    model: str
    input_tokens: int
    output_tokens: int
    next_id: Callable[[str], str]
    deltas: tuple[str, ...] = ()
    hold: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def pieces(self) -> Iterator[bytes | str]:
        """The streamed text pieces, with :data:`HOLD` after the first when the stream is held."""
        for index, piece in enumerate(self.deltas or ((self.text,) if self.text else ())):
            if index == 1 and self.hold:
                yield HOLD
            yield piece


def tool_call(api: Api, call: ToolCall) -> tuple[str, dict[str, Any]]:
    """The tool name and arguments ``call`` becomes for ``api``'s client."""
    if call.kind == "raw":
        return call.name, dict(call.args)
    if api == "openai":
        cmd = call.command
        if call.kind == "write":
            cmd = f"printf %s {shlex.quote(call.content)} > {shlex.quote(call.path)}"
        return "exec_command", {"cmd": cmd}
    if api == "gemini":
        if call.kind == "write":
            return "write_file", {"file_path": call.path, "content": call.content}
        return "run_shell_command", {"command": call.command, "description": "scripted command"}
    if call.kind == "write":
        return "Write", {"file_path": call.path, "content": call.content}
    return "Bash", {"command": call.command, "description": "scripted command"}


def model_name(api: Api, path: str, body: dict[str, Any]) -> str:
    """The model the client asked for."""
    if api == "gemini":
        return path.rsplit("/", 1)[-1].split(":", 1)[0]
    return str(body.get("model") or "fake-model")


def wants_stream(api: Api, op: str, body: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether the client asked for server-sent events."""
    if api == "gemini":
        return op == "streamGenerateContent" or query.get("alt") == "sse"
    return bool(body.get("stream"))


def error_body(api: Api, status: int, message: str) -> dict[str, Any]:
    """An error payload in ``api``'s format."""
    if api == "openai":
        kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "code": kind, "param": None}}
    if api == "gemini":
        statuses = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            503: "UNAVAILABLE",
        }
        return {"error": {"code": status, "message": message, "status": statuses.get(status, "INTERNAL")}}
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}


def auxiliary_answer(api: Api, op: str, body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """Answers to helper calls that are not model turns (they never consume a scripted turn)."""
    if api == "gemini" and op == "countTokens":
        return {"totalTokens": max(len(text) // 4, 1)}
    if api == "anthropic" and op == "count_tokens":
        return {"input_tokens": max(len(text) // 4, 1)}
    if api == "gemini" and op == "generateContent":
        if "complexity_score" in text:
            data = {"complexity_reasoning": "scripted: simple", "complexity_score": 1}
        elif "next_speaker" in text:
            data = {"reasoning": "scripted: the model finished", "next_speaker": "user"}
        else:
            return None
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": json.dumps(data)}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        }
    return None


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


# -- OpenAI Responses ------------------------------------------------------------------------------------------------


def openai_responses(a: Answer, stream: bool) -> Payload:
    """A Responses API answer: the full event sequence the openai SDK's stream helpers expect."""
    resp_id = a.next_id("resp")
    items: list[dict[str, Any]] = []
    if a.text or a.tool is None:
        items.append(
            {
                "id": a.next_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": a.text, "annotations": []}],
            }
        )
    if a.tool is not None:
        name, args = a.tool
        items.append(
            {
                "id": a.next_id("fc"),
                "type": "function_call",
                "status": "completed",
                "call_id": a.next_id("call"),
                "name": name,
                "arguments": json.dumps(args),
            }
        )
    usage = {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": a.total_tokens,
    }
    base = {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": a.model,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
    }
    final = {**base, "status": "completed", "output": items, "usage": usage}
    if not stream:
        return final
    return _openai_events(a, base, items, final)


def _openai_events(
    a: Answer, base: dict[str, Any], items: list[dict[str, Any]], final: dict[str, Any]
) -> Iterator[bytes]:
    seq = iter(range(1_000_000))

    def ev(kind: str, **data: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(seq), **data})

    pending = {**base, "status": "in_progress", "output": [], "usage": None}
    yield ev("response.created", response=pending)
    yield ev("response.in_progress", response=pending)
    for index, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield ev(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield ev("response.content_part.added", **common, part=part)
            for piece in a.pieces():
                if isinstance(piece, bytes):
                    yield piece
                else:
                    yield ev("response.output_text.delta", **common, delta=piece, logprobs=[])
            yield ev("response.output_text.done", **common, text=text, logprobs=[])
            yield ev("response.content_part.done", **common, part={**part, "text": text})
        else:
            yield ev("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            yield ev(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=index,
                delta=item["arguments"],
            )
            yield ev(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
            )
        yield ev("response.output_item.done", output_index=index, item=item)
    yield ev("response.completed", response=final)


def openai_chat(a: Answer, stream: bool) -> Payload:
    """A Chat Completions answer (JSON or ``data:`` chunks ending in ``[DONE]``)."""
    chat_id = a.next_id("chatcmpl")
    message: dict[str, Any] = {"role": "assistant", "content": a.text or None}
    finish = "stop"
    if a.tool is not None:
        name, args = a.tool
        message["tool_calls"] = [
            {"id": a.next_id("call"), "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ]
        finish = "tool_calls"
    usage = {"prompt_tokens": a.input_tokens, "completion_tokens": a.output_tokens, "total_tokens": a.total_tokens}
    base = {"id": chat_id, "created": int(time.time()), "model": a.model}
    if not stream:
        return {
            **base,
            "object": "chat.completion",
            "usage": usage,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }

    def events() -> Iterator[bytes]:
        chunk = {**base, "object": "chat.completion.chunk"}
        delta: dict[str, Any] = {"role": "assistant", "content": a.text}
        if "tool_calls" in message:
            delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
        yield _sse(None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        yield _sse(None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage})
        yield b"data: [DONE]\n\n"

    return events()


# -- Gemini ----------------------------------------------------------------------------------------------------------


def gemini(a: Answer, stream: bool) -> Payload:
    """A generateContent answer; streamed as one SSE event per chunk, usage on the last."""
    usage = {
        "promptTokenCount": a.input_tokens,
        "candidatesTokenCount": a.output_tokens,
        "totalTokenCount": a.total_tokens,
    }
    parts: list[dict[str, Any]] = []
    if a.text:
        parts.append({"text": a.text})
    if a.tool is not None:
        name, args = a.tool
        parts.append({"functionCall": {"name": name, "args": args}})
    if not parts:
        parts.append({"text": ""})
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    final = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": a.model,
        "responseId": a.next_id("gem"),
    }
    if not stream:
        return final
    if len(a.deltas) < 2:
        return iter([f"data: {json.dumps(final)}\r\n\r\n".encode()])

    def events() -> Iterator[bytes]:
        for piece in a.pieces():
            if isinstance(piece, bytes):
                yield piece
                continue
            chunk = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}],
                "modelVersion": a.model,
                "responseId": final["responseId"],
            }
            yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
        last_parts = [p for p in parts if "text" not in p] or [{"text": ""}]
        last = {**final, "candidates": [{**candidate, "content": {"role": "model", "parts": last_parts}}]}
        yield f"data: {json.dumps(last)}\r\n\r\n".encode()

    return events()


# -- Anthropic -------------------------------------------------------------------------------------------------------


def anthropic(a: Answer, stream: bool) -> Payload:
    """A Messages API answer; streamed as message_start ... message_stop."""
    msg_id = a.next_id("msg")
    blocks: list[dict[str, Any]] = []
    if a.text or a.tool is None:
        blocks.append({"type": "text", "text": a.text})
    if a.tool is not None:
        name, args = a.tool
        blocks.append({"type": "tool_use", "id": a.next_id("toolu"), "name": name, "input": args})
    stop = "tool_use" if a.tool is not None else "end_turn"
    usage = {
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    message = {"id": msg_id, "type": "message", "role": "assistant", "model": a.model}
    if not stream:
        return {**message, "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}

    def events() -> Iterator[bytes]:
        start: dict[str, Any] = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        yield _sse("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                yield _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
                for piece in a.pieces() if a.deltas else (block["text"],):
                    if isinstance(piece, bytes):
                        yield piece
                        continue
                    delta = {"type": "text_delta", "text": piece}
                    yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
                continue
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": a.output_tokens},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    return events()


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status."""
    return HTTPStatus(status).phrase
