"""The event-loop stdio transport (server/stdio.py) over real pipes: lines as the SDK's text file yields them."""

from __future__ import annotations

import os

import anyio
import pytest

from mcp_orchestrator.server.stdio import FdLines, FdWriter

pytestmark = pytest.mark.anyio


async def test_lines_split_across_reads_and_a_last_line_without_newline() -> None:
    r, w = os.pipe()
    lines = FdLines(r)
    got: list[str] = []

    async def read_all() -> None:
        async for line in lines:
            got.append(line)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all)
            for part in (b'{"a":1}\n{"b":', b'"\xc3', b'\xa9"}\n\n', b"tail"):  # a UTF-8 character cut in two
                os.write(w, part)
                await anyio.sleep(0.01)
            os.close(w)
    os.close(r)
    assert got == ['{"a":1}\n', '{"b":"é"}\n', "\n", "tail"]


async def test_a_message_larger_than_the_pipe_waits_for_the_reader() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    text = "x" * (1 << 20) + "\n"  # 16 pipe buffers
    received = bytearray()

    async def drain() -> None:
        while len(received) < len(text):
            await anyio.wait_readable(r)
            received.extend(os.read(r, 1 << 16))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            writer = FdWriter(w)
            assert await writer.write(text) == len(text)
            await writer.flush()
    os.close(r)
    os.close(w)
    assert received.decode() == text
