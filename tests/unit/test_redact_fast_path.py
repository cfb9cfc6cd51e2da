"""Redacting a structure searches its strings once, joined, before going string by string (issue #15): the
result is the same as redacting every string on its own, secret or not, wherever in a string it sits."""

from __future__ import annotations

import random
from typing import Any

from mcp_orchestrator.observability import Redactor

SECRETS = [
    "sk-proj-abcdefghijklmnop",
    "Bearer abcdefgh12345678",
    "AIzaSyA1234567890abcdefghijkl",
    "ghp_abcdefghijklmnopqrstuvwxyz",
    "api_key=abcdefgh12345678",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAabcdefghijklmn\n-----END RSA PRIVATE KEY-----",
    "the-env-value-Q9x8",
]
PLAIN = ["", "mock answer", "step 0: w completed", "a" * 5000, "bearer", "sk-", "key:", "x\x00y", "Basic"]


def one_by_one(redactor: Redactor, value: Any) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: one_by_one(redactor, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [one_by_one(redactor, v) for v in value]
    return value


def structure(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth > 2 or kind < 0.5:
        text = rng.choice(PLAIN)
        if rng.random() < 0.25:
            secret = rng.choice(SECRETS)
            cut = rng.randint(0, len(text))
            text = text[:cut] + secret + text[cut:]
        return text if rng.random() < 0.9 else rng.choice([None, 3, 2.5, True])
    if kind < 0.75:
        return {f"k{i}": structure(rng, depth + 1) for i in range(rng.randint(0, 5))}
    return [structure(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_a_structure_redacts_as_its_strings_one_by_one() -> None:
    redactor = Redactor({"MY_TOKEN": "the-env-value-Q9x8"})
    rng = random.Random(15)
    found = 0
    for _ in range(3000):
        value = structure(rng)
        expected = one_by_one(redactor, value)
        assert redactor.data(value) == expected, value
        found += expected != value
    assert found > 300  # secrets were there to find, and were found


def test_a_clean_structure_comes_back_as_it_was() -> None:
    redactor = Redactor({})
    value = {"output": "mock answer", "attempts": [{"error": None, "n": 1}], "tags": ("a", "b")}
    assert redactor.data(value) is value
    dirty = {"auth": "Bearer abcdefgh12345678", "other": "mock answer"}
    assert redactor.data(dirty) == {"auth": redactor.text(dirty["auth"]), "other": "mock answer"} != dirty
