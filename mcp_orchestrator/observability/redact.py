"""Redaction: secrets never reach logs, replays, the store or tool results.

Two nets: the values of credential variables in the environment (exact match), and patterns
of well-known secret shapes (API keys, bearer tokens, private key blocks).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "<redacted>"
_CREDENTIAL_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-(?:ant-|proj-|test-)?[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|secret)\s*[=:]\s*[\"']?[A-Za-z0-9._~+/-]{8,}"),
]


class Redactor:
    """Replaces secret values and secret-shaped text with ``<redacted>``."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, min_length: int = 6) -> None:
        env = os.environ if environ is None else environ
        values = {v for k, v in env.items() if _CREDENTIAL_NAME.search(k) and len(v) >= min_length}
        # Longest first, so a value that contains another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every known secret replaced."""
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            value = pattern.sub(REDACTED, value)
        return value

    def data(self, value: Any) -> Any:
        """A JSON-like structure with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
