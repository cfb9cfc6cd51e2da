"""Redaction: secrets never reach logs, replays, the store or tool results.

Two nets: the values of credential variables in the environment (exact match), and patterns
of well-known secret shapes (API keys, bearer tokens, private key blocks). Each pattern has
cheap literal triggers, so a large output without any of them costs one substring search per
pattern instead of a regex scan. Files (a step's spooled output) are redacted in bounded
chunks with an overlap, so a secret that straddles two chunks is still found.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets as _secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["REDACTED", "Redactor"]

REDACTED = "<redacted>"
_CREDENTIAL_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
_KEY_LINE = re.compile(r"[A-Za-z0-9+/=]{16,100}\r?")
MAX_KEY_LINES = 200
# (pattern, literal triggers, triggers are lower-case: compare against the lowered text)
_PATTERNS: list[tuple[re.Pattern[str], tuple[str, ...], bool]] = [
    # A whole block; a block cut off by an excerpt counts up to the end of the text.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
        ("PRIVATE KEY-----",),
        False,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), ("bearer", "basic"), True),
    (re.compile(r"\bsk-(?:ant-|proj-|test-)?[A-Za-z0-9_-]{8,}"), ("sk-",), False),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), ("AIza",), False),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), False),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), ("xox",), False),
    (
        re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|secret)\s*[=:]\s*[\"']?[A-Za-z0-9._~+/-]{8,}"),
        ("api", "token", "secret"),
        True,
    ),
]
# Every trigger of every pattern at once, case-insensitive (a superset of the exact triggers): most strings
# hold none, and one search says so where testing each trigger cost a scan per trigger.
_ANY_TRIGGER = re.compile(
    "|".join(re.escape(t) for _, triggers, _ in _PATTERNS for t in triggers) + "|PRIVATE KEY-----", re.IGNORECASE
)
SHORT = 4096
CHUNK = 1 << 20
OVERLAP = 64 << 10


def _looks_secret(value: str, min_length: int) -> bool:
    # A flag such as AUTH_MODE=enabled is not a secret: redacting every "enabled" would garble output.
    return len(value) >= min_length and (any(c.isdigit() for c in value) or len(value) >= 16)


def _strings(value: Any, out: list[str]) -> None:
    """Append every string in a JSON-like structure (not dict keys) to ``out``."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, out)


class Redactor:
    """Replaces secret values and secret-shaped text with ``<redacted>``."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, min_length: int = 6) -> None:
        env = os.environ if environ is None else environ
        values = {v for k, v in env.items() if _CREDENTIAL_NAME.search(k) and _looks_secret(v, min_length)}
        # Longest first, so a value that contains another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    def spans(self, value: str) -> list[tuple[int, int]]:
        """The merged ``(start, end)`` ranges of ``value`` that hold a secret, in order."""
        found: list[tuple[int, int]] = []
        for secret in self._values:
            start = value.find(secret)
            while start != -1:
                found.append((start, start + len(secret)))
                start = value.find(secret, start + len(secret))
        # Long text keeps the per-pattern literal search, faster there than one case-insensitive regex.
        triggered = len(value) > SHORT or _ANY_TRIGGER.search(value) is not None
        if not triggered and not found:
            return found
        lowered: str | None = None
        for pattern, triggers, lower in _PATTERNS if triggered else ():
            if lower:
                lowered = value.lower() if lowered is None else lowered
                hay = lowered
            else:
                hay = value
            if any(t in hay for t in triggers):
                found.extend(m.span() for m in pattern.finditer(value))
        if "PRIVATE KEY-----" in value:
            found.extend(_key_tails(value))
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def text(self, value: str) -> str:
        """``value`` with every known secret replaced."""
        return _replace(value, self.spans(value))

    def data(self, value: Any) -> Any:
        """A JSON-like structure with every string redacted: ``value`` itself when it holds no secret.

        Its strings are first searched once, joined by NUL (a non-word character, as a string's edge is to the
        patterns' ``\b``): nothing found there means nothing is in any of them. Anything found, even across two
        strings, takes the string-by-string pass."""
        strings: list[str] = []
        _strings(value, strings)
        if not strings or not self.spans("\x00".join(strings)):
            return value
        return self._data(value)

    def _data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self._data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._data(v) for v in value]
        return value

    def file(self, path: Path, *, chunk: int = CHUNK, overlap: int = OVERLAP) -> bool:
        """Rewrite ``path`` with its secrets replaced (atomically); True when anything changed.

        Bytes that are not UTF-8 survive unchanged (``surrogateescape``). A secret longer than
        ``overlap`` that straddles a chunk boundary could escape; every known shape is far shorter.
        Reads the file once when it holds nothing to replace (the usual case: no temporary file is made);
        otherwise a second pass writes the redacted copy and renames it over the file.
        """
        with path.open("rb") as src:
            if not any(done for _, done in self._pieces(src, chunk, overlap)):
                return False
        tmp = path.with_name(f"{path.name}.redact-{os.getpid()}-{_secrets.token_hex(4)}")
        try:
            with path.open("rb") as src, tmp.open("wb") as dst:
                for text, done in self._pieces(src, chunk, overlap):
                    dst.write(_replace(text, done).encode("utf-8", "surrogateescape"))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return True

    def _pieces(self, src: BinaryIO, chunk: int, overlap: int) -> Iterator[tuple[str, list[tuple[int, int]]]]:
        """The text of ``src`` in bounded pieces, each with the secrets it holds; no secret is split."""
        carry = ""
        while True:
            data = src.read(chunk)
            text = carry + data.decode("utf-8", "surrogateescape")
            spans = self.spans(text)
            cut = len(text) if not data else max(len(text) - overlap, 0)
            for start, end in spans:
                if start < cut < end:  # never split a secret: keep all of it for the next round
                    cut = start
            yield text[:cut], [(s, e) for s, e in spans if e <= cut]
            carry = text[cut:]
            if not data:
                return

    def tree(self, root: Path) -> list[Path]:
        """Redact every regular file under ``root`` (lock files aside); returns those that changed."""
        if not root.is_dir():
            return []
        changed = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.endswith(".lock"):
                try:
                    if self.file(path):
                        changed.append(path)
                except FileNotFoundError:
                    continue
        return changed


def _key_tails(value: str) -> list[tuple[int, int]]:
    """The body lines before each ``-----END ... PRIVATE KEY-----`` (an excerpt may have cut its BEGIN)."""
    out = []
    for m in _KEY_END.finditer(value):
        start = m.start()
        for _ in range(MAX_KEY_LINES):  # walk back one base64 line at a time
            prev = value.rfind("\n", 0, max(start - 1, 0))
            line = value[prev + 1 : start - 1] if start > 0 else ""
            if not _KEY_LINE.fullmatch(line):
                break
            start = prev + 1
        out.append((start, m.end()))
    return out


def _replace(value: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return value
    parts, pos = [], 0
    for start, end in spans:
        parts.append(value[pos:start])
        parts.append(REDACTED)
        pos = end
    parts.append(value[pos:])
    return "".join(parts)
