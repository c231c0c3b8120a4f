"""Verification SCP (C-ECHO, PS3.4 Annex A)."""

from __future__ import annotations

from typing import Any

from printscp.core import status


def handle_echo(event: Any) -> int:
    """Answer C-ECHO with Success: the node is up and accepting associations."""
    return status.SUCCESS
