#!/usr/bin/env python3
"""A stand-in for ``codex exec --json``: answers at once, in codex's JSONL, without a model.

    fake_cli.py exec --json [flags...] [resume THREAD_ID] -- PROMPT

Prints ``thread.started``, ``turn.started``, one ``agent_message`` item (``fake answer: <first
40 characters of the prompt>``) and ``turn.completed`` with usage, then exits 0. ``resume ID``
keeps that thread id. Standard library only and no ``site`` imports needed, so it starts in a few
milliseconds when run as ``python -IS fake_cli.py`` (``bench/cli_overhead.py`` does that).
"""

import json
import sys


def main(argv: list[str]) -> int:
    """Print one turn's events for the prompt in ``argv``."""
    if not argv or argv[0] != "exec":
        sys.stderr.write("fake_cli: only `exec` is supported\n")
        return 2
    prompt = argv[-1] if "--" in argv else sys.stdin.read()
    thread = "0199b000-0000-7000-8000-00000000fa4e"
    if "resume" in argv:
        thread = argv[argv.index("resume") + 1]
    message = {"id": "item_0", "type": "agent_message", "text": f"fake answer: {prompt[:40]}"}
    usage = {"input_tokens": len(prompt.split()) + 10, "cached_input_tokens": 0, "output_tokens": 3}
    events = [
        {"type": "thread.started", "thread_id": thread},
        {"type": "turn.started"},
        {"type": "item.completed", "item": message},
        {"type": "turn.completed", "usage": usage},
    ]
    sys.stdout.write("".join(json.dumps(e) + "\n" for e in events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
