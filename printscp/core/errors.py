"""Errors shared by every layer."""

from __future__ import annotations

from collections.abc import Iterable


class UnsupportedPynetdicom(ImportError):
    """The installed pynetdicom is not the release printscp's network layer mirrors
    (raised when :mod:`printscp.net` is imported; see :mod:`printscp.net.compat`)."""


class StatusError(Exception):
    """A request refused with a DIMSE status (PS3.7 Annex C): the status, the Error
    Comment (0000,0902) that says why, and the tags at fault for the Attribute Identifier
    List (0000,1005).  Raised by any layer that decides a request's answer (the
    services, the archive's and the worklist's query checks); the services layer turns
    it into the response (:func:`printscp.services.dimse.error_status`)."""

    def __init__(self, status: int, comment: str, tags: Iterable[int] = ()) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment
        self.tags = [int(t) for t in tags]


class ConfigError(ValueError):
    """The configuration is invalid: one line naming where, the key and what is allowed.

    ``str()`` is ``"SOURCE: KEY: PROBLEM"`` (the parts that are known), e.g.
    ``printscp.toml: node.port: "11112" is a string; expected an integer 0-65535``.
    ``key`` is dotted as in the TOML file (``printer.targets[1].queue``); ``source``
    is the configuration file, or empty for a command-line option (then the key is the
    option, ``--port``).  A check deep down raises with the key it knows; the callers
    above add their part with :meth:`within` and :meth:`at`.
    """

    def __init__(self, problem: str, key: str = "", source: str = "") -> None:
        super().__init__(problem, key, source)
        self.problem = " ".join(str(problem).split())  # always one line
        self.key = key
        self.source = source

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.key, self.problem) if part)

    def within(self, prefix: str) -> ConfigError:
        """The same error with its key under ``prefix`` (``"node"``, ``"remote[0]"``)."""
        if not prefix:
            return self
        key = self.key
        joined = prefix if not key else f"{prefix}{key}" if key.startswith("[") else \
            f"{prefix}.{key}"
        return ConfigError(self.problem, joined, self.source)

    def at(self, source: str) -> ConfigError:
        """The same error read from ``source`` (a file name)."""
        return ConfigError(self.problem, self.key, str(source))


def shown(value: object) -> str:
    """``value`` as a configuration file spells it, cut to one short line."""
    import json

    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | list | tuple | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= 48 else text[:45] + "..."


def kind_of(value: object) -> str:
    """What sort of TOML value ``value`` is: "a string", "an integer", "a table"..."""
    if isinstance(value, bool):
        return "a boolean"
    for types, name in ((int, "an integer"), (float, "a float"), (str, "a string"),
                        ((list, tuple), "a list"), (dict, "a table")):
        if isinstance(value, types):
            return name
    return "a date or time" if hasattr(value, "isoformat") else f"a {type(value).__name__}"


def wrong_type(value: object, expected: str, key: str = "") -> ConfigError:
    """``"11112" is a string; expected an integer 0-65535``."""
    return ConfigError(f"{shown(value)} is {kind_of(value)}; expected {expected}", key)


def wrong_value(value: object, expected: str, key: str = "",
                why: str = "is not allowed") -> ConfigError:
    """``70000 is out of range; expected an integer 0-65535``."""
    return ConfigError(f"{shown(value)} {why}; expected {expected}", key)
