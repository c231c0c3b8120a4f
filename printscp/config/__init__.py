"""The node's configuration: one typed object from a TOML file plus command-line overrides.

Every key, its type, range and default is listed in ``docs/configuration.md``;
``docs/printscp.example.toml`` is a complete example.  Each value is checked once, when
the configuration is loaded (or a section is built in Python): a wrong type, a value
out of range or an unknown key raises :class:`ConfigError`, one line naming the file,
the key and what is allowed, e.g.
``printscp.toml: node.port: "11112" is a string; expected an integer 0-65535``.

* :mod:`printscp.config.checks`: the rules (integer ranges, enums, lists, tables).
* :mod:`printscp.config.model`: the typed sections, checking themselves when built.
* :mod:`printscp.config.loader`: the TOML file's shape, and command-line overrides.

It may import printscp.core, printscp.printing, printscp.jobs, printscp.worklist,
printscp.archive, printscp.mpps and printscp.query (for their enums and checks), never
printscp.services, printscp.net, printscp.app or pynetdicom.
"""

from __future__ import annotations

from printscp.config.loader import NODE_KEYS, SECTIONS, apply_overrides, load_config, read_config
from printscp.config.model import (
    AccessConfig,
    ArchiveConfig,
    AuditConfig,
    CompletedSteps,
    DuplicatePolicy,
    Hl7Config,
    HttpConfig,
    LimitsConfig,
    NodeConfig,
    PrinterConfig,
    Replaceable,
    TlsConfig,
    WorklistConfig,
)
from printscp.core.errors import ConfigError
from printscp.core.remote import RemoteAE
from printscp.jobs.targets import DEFAULT_TARGETS

__all__ = [
    "DEFAULT_TARGETS", "NODE_KEYS", "SECTIONS", "AccessConfig", "ArchiveConfig",
    "AuditConfig", "CompletedSteps", "ConfigError", "DuplicatePolicy", "Hl7Config", "HttpConfig",
    "LimitsConfig", "NodeConfig", "PrinterConfig", "RemoteAE", "Replaceable", "TlsConfig",
    "WorklistConfig", "apply_overrides", "load_config",
    "read_config",
]
