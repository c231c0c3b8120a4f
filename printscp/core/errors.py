"""Errors shared by every layer."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""
