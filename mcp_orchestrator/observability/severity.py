"""How much a diagnosis action matters: the vocabulary ``models`` and the operator CLI's ``--fail-on`` share.

Its own module so that building the CLI's parser (``serve`` builds it too) imports no model (issue 15)."""

from __future__ import annotations

from typing import Literal

__all__ = ["SEVERITIES", "Severity"]

Severity = Literal["info", "warn", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warn", "error", "critical")
