"""OutputSink and bound_text: bounded memory, exact byte counts, a capped spool file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_orchestrator.runtimes.base import OutputSink, bound_text


def test_small_output_is_kept_whole(tmp_path: Path) -> None:
    sink = OutputSink(tmp_path / "out.log", excerpt_bytes=100)
    sink.write(b"hello ")
    sink.write(b"")
    sink.write(b"world")
    sink.close()
    assert sink.excerpt() == ("hello world", False)
    assert sink.total_bytes == sink.spooled_bytes == 11
    assert (tmp_path / "out.log").read_bytes() == b"hello world"


def test_large_output_keeps_head_and_tail_and_counts_every_byte(tmp_path: Path) -> None:
    sink = OutputSink(tmp_path / "out.log", excerpt_bytes=64)
    data = b"".join(f"{i:05d}|".encode() for i in range(20_000))  # 120,000 bytes
    for i in range(0, len(data), 777):
        sink.write(data[i : i + 777])
    sink.close()
    text, truncated = sink.excerpt()
    assert truncated
    assert sink.total_bytes == len(data)
    assert text.startswith(data[:32].decode())
    assert text.endswith(data[-32:].decode())
    assert f"[{len(data) - 64} bytes cut]" in text
    assert (tmp_path / "out.log").read_bytes() == data


def test_memory_stays_bounded_whatever_the_chunking() -> None:
    sink = OutputSink(None, excerpt_bytes=1000)
    for _ in range(10_000):
        sink.write(b"y" * 1000)
        assert sink._tail_len <= 2 * 1000 + 1000  # the bound is the point of the class
    assert len(sink._head) == 500
    assert sink.total_bytes == 10_000_000
    assert sink.spooled_bytes == 0


def test_spool_stops_at_its_cap_but_counting_goes_on(tmp_path: Path) -> None:
    sink = OutputSink(tmp_path / "steps" / "0" / "output.log", excerpt_bytes=10, spool_cap=1000)
    for _ in range(30):
        sink.write(b"z" * 99)
    sink.close()
    assert sink.total_bytes == 2970
    assert sink.spooled_bytes == 1000
    assert (tmp_path / "steps" / "0" / "output.log").stat().st_size == 1000


def test_no_spool_file_until_output_arrives(tmp_path: Path) -> None:
    sink = OutputSink(tmp_path / "never" / "output.log")
    sink.close()
    assert not (tmp_path / "never").exists()
    assert sink.excerpt() == ("", False)


def test_split_multibyte_characters_never_break_the_excerpt() -> None:
    sink = OutputSink(None, excerpt_bytes=9)
    data = "💥é" * 100
    raw = data.encode()
    for i in range(0, len(raw), 3):
        sink.write(raw[i : i + 3])
    text, truncated = sink.excerpt()
    assert truncated
    assert isinstance(text, str)
    text.encode()  # valid str (replacement characters where a character was cut)


def test_character_across_the_head_boundary_stays_whole_when_nothing_was_cut() -> None:
    sink = OutputSink(None, excerpt_bytes=10)  # head holds 5 bytes
    text = "abc€def"  # 9 bytes; "€" is 3 of them: 2 in the head, 1 in the tail
    sink.write(text.encode())
    assert sink.excerpt() == (text, False)


@settings(max_examples=200, deadline=None, database=None)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=40),
    excerpt=st.integers(min_value=2, max_value=256),
)
def test_excerpt_property(chunks: list[bytes], excerpt: int) -> None:
    sink = OutputSink(None, excerpt_bytes=excerpt)
    for c in chunks:
        sink.write(c)
    data = b"".join(chunks)
    text, truncated = sink.excerpt()
    assert sink.total_bytes == len(data)
    assert truncated == (len(data) > excerpt)
    if not truncated:
        assert text == data.decode("utf-8", "replace")
    else:
        head, tail = excerpt // 2, excerpt - excerpt // 2
        assert text.startswith(data[:head].decode("utf-8", "replace"))
        assert text.endswith(data[-tail:].decode("utf-8", "replace"))


@pytest.mark.parametrize("cap", [0, 1, 39, 40, 41, 100, 1000])
def test_bound_text(cap: int) -> None:
    short = "a" * cap
    assert bound_text(short, cap) == (short, False)
    long = "".join(chr(0x41 + i % 26) for i in range(5000))
    text, cut = bound_text(long, cap)
    assert cut
    half = max(cap // 2 - 20, 0)
    if half:
        assert text.startswith(long[:half])
        assert text.endswith(long[-half:])
    assert f"[{5000 - 2 * half} characters cut]" in text
