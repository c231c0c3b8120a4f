"""Reading the TOML file: walk its tables, build the typed sections, name file and key.

The sections check themselves (:mod:`printscp.config.model`); this module only knows
the file's shape: which tables exist, which keys each has, that ``[printers.NAME]``
defaults its AE title to NAME, that a relative ``output_profile`` is next to the file,
that ``film_box_defaults`` adds to the built-in defaults, and that targets are built
by :mod:`printscp.jobs.targets`.  Every error becomes one line: ``FILE: KEY: PROBLEM``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from printscp.config.checks import (
    Boolean,
    Custom,
    Expect,
    Instance,
    Text,
    required,
    rules_for,
    sub,
    unknown_key,
)
from printscp.config.model import (
    AccessConfig,
    ArchiveConfig,
    AuditConfig,
    Hl7Config,
    HttpConfig,
    LimitsConfig,
    NodeConfig,
    PrinterConfig,
    TlsConfig,
)
from printscp.core.errors import ConfigError, wrong_type, wrong_value
from printscp.core.remote import (
    AE_TITLE_RULE,
    HOST_RULE,
    RemoteAE,
    check_ae_title,
    check_host,
    check_port,
)
from printscp.jobs.targets import TargetError, TargetKind, parse_targets, target_class
from printscp.worklist.items import WorklistConfig

#: Top-level tables of the file; everything but ``node`` is a field of NodeConfig.
SECTIONS = ("node", "access", "archive", "worklist", "http", "tls", "limits", "audit", "hl7",
            "remote", "printer", "printers")
#: ``[node]`` keys: NodeConfig's fields that are not sections.
NODE_KEYS = tuple(f.name for f in fields(NodeConfig) if f.name not in SECTIONS)
#: ``[[remote]]`` keys (RemoteAE lives in printscp.core, below these rules).
REMOTE_FIELDS: dict[str, Expect] = {
    "ae_title": Custom(check_ae_title, AE_TITLE_RULE),
    "host": Custom(check_host, HOST_RULE),
    "port": Custom(check_port, "an integer 1-65535"),
    "tls": Boolean(),
    "certificate": Text(),
    "private_key": Text(),
    "ca_certificates": Text(),
}
REMOTE_RULE = ('a list of [[remote]] tables {ae_title, host, port, tls...} or "AE@HOST:PORT" '
               'strings')


def load_config(path: str | Path | None = None, **overrides: Any) -> NodeConfig:
    """Read ``path`` (TOML, sections ``[node]``, ``[access]``, ``[printer]``...) and apply
    the non-None ``overrides`` (NodeConfig fields, as given on the command line).

    Any invalid value raises :class:`ConfigError` whose text is one line naming the
    file (or the command-line option), the key and what is allowed."""
    config = NodeConfig() if path is None else read_config(path)
    return apply_overrides(config, overrides)


def read_config(path: str | Path) -> NodeConfig:
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(err.strerror or str(err), source=source) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", source=source) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", source=source) from None
    try:
        return node_from_toml(raw, Path(path).parent)
    except ConfigError as err:
        raise err.at(source) from None


def apply_overrides(config: NodeConfig, overrides: Mapping[str, Any]) -> NodeConfig:
    """``config`` with the non-None ``overrides``; a bad one is named as its option."""
    rules = rules_for(NodeConfig)
    changes = {}
    for name, value in overrides.items():
        if value is None:
            continue
        option = "--" + name.replace("_", "-") if name in NODE_KEYS else name
        if name not in rules:
            raise ConfigError(f"unknown option; expected one of {', '.join(rules)}", option)
        changes[name] = rules[name](value, option)
    return replace(config, **changes) if changes else config


def node_from_toml(raw: Mapping[str, Any], base: Path) -> NodeConfig:
    """The node from a parsed TOML document; relative paths are from ``base``."""
    for name in raw:
        if name not in SECTIONS:
            raise ConfigError(f"unknown section; expected one of {', '.join(SECTIONS)}",
                              name)
    kwargs: dict[str, Any] = dict(_table(raw.get("node", {}), "node", NODE_KEYS))
    for name, cls in (("access", AccessConfig), ("archive", ArchiveConfig),
                      ("worklist", WorklistConfig), ("http", HttpConfig),
                      ("limits", LimitsConfig), ("audit", AuditConfig),
                      ("hl7", Hl7Config)):
        if name in raw:
            kwargs[name] = build(cls, raw[name], name)
    if "tls" in raw:
        kwargs["tls"] = build(TlsConfig, _relative_paths(raw["tls"], "tls", base,
                                                         TLS_PATHS), "tls")
    if "remote" in raw:
        kwargs["remote"] = _remotes(raw["remote"], base)
    if "printer" in raw:
        kwargs["printer"] = _printer(raw["printer"], "printer", base)
    if "printers" in raw:
        printers = _table(raw["printers"], "printers")
        kwargs["printers"] = {name: _printer(section, sub("printers", name), base, name)
                              for name, section in printers.items()}
    return NodeConfig(**kwargs)  # its own errors name their keys in full


def build(cls: type, table: Any, key: str, rules: Mapping[str, Expect] | None = None,
          **extra: Any) -> Any:
    """``cls`` from a TOML table at ``key``: unknown or missing keys and every value are
    checked by ``rules`` (default: ``cls``'s field metadata, else its annotations)."""
    rules = rules or rules_for(cls)
    _table(table, key, rules)
    values = {name: rules[name](value, sub(key, name)) for name, value in table.items()
              if not isinstance(rules[name], Instance)}
    values.update(extra)
    missing = [name for name in required(cls) if name not in values]
    if missing:
        raise ConfigError(f"missing; expected {rules[missing[0]].what}", sub(key, missing[0]))
    try:
        return cls(**values)
    except ConfigError as err:
        raise err.within(key) from None


def _table(value: Any, key: str, known: Any = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type(value, "a table", key)
    if known is not None:
        for name in value:
            if name not in known:
                raise unknown_key(name, known, key)
    return value


#: Keys naming files, relative to the configuration file's folder.
TLS_PATHS = ("certificate", "private_key", "ca_certificates")


def _relative_paths(value: Any, key: str, base: Path, names: tuple[str, ...]) -> Any:
    """``value`` (a table) with its relative paths among ``names`` made from ``base``."""
    table = dict(_table(value, key))
    for name in names:
        path = table.get(name)
        if isinstance(path, str) and path and not Path(path).is_absolute():
            table[name] = str(base / path)
    return table


def _remotes(value: Any, base: Path) -> tuple[RemoteAE, ...]:
    if not isinstance(value, list):
        raise wrong_type(value, REMOTE_RULE, "remote")
    remotes = []
    for i, item in enumerate(value):
        where = f"remote[{i}]"
        if isinstance(item, str):
            try:
                remotes.append(RemoteAE.parse(item))
            except ConfigError as err:
                raise err.within(where) from None
        elif isinstance(item, Mapping):
            item = _relative_paths(item, where, base, TLS_PATHS)
            remotes.append(build(RemoteAE, item, where, REMOTE_FIELDS))
        else:
            raise wrong_type(item, 'a table {ae_title, host, port} or "AE@HOST:PORT"', where)
    return tuple(remotes)


def _printer(value: Any, key: str, base: Path, name: str = "") -> PrinterConfig:
    """A printer profile; ``name``: a ``[printers.NAME]`` section (AE title NAME)."""
    table = dict(_table(value, key, rules_for(PrinterConfig)))
    extra: dict[str, Any] = {}
    if "targets" in table:
        extra["targets"] = _targets(table.pop("targets"), sub(key, "targets"))
    defaults = PrinterConfig()
    for merged in ("film_box_defaults", "film_session_defaults"):
        if isinstance(table.get(merged), Mapping):  # adds to the built-in defaults
            table[merged] = {**getattr(defaults, merged), **table[merged]}
    if name and table.get("ae_title", "") == "":
        table["ae_title"] = name
    profile = table.get("output_profile")
    if isinstance(profile, str) and profile and not Path(profile).is_absolute():
        table["output_profile"] = str(base / profile)  # next to the file naming it
    return build(PrinterConfig, table, key, **extra)


def _targets(value: Any, key: str) -> Any:
    """``[[printer.targets]]``: the value types here, the rest in jobs.targets."""
    what = f"a list of [[{key}]] tables"
    if not isinstance(value, list):
        raise wrong_type(value, what, key)
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise wrong_type(item, "a table", where)
        kind = item.get("type")
        kinds = "one of " + ", ".join(k.value for k in TargetKind if k is not TargetKind.ARCHIVE)
        if kind is None:
            raise ConfigError(f"missing; expected {kinds}", f"{where}.type")
        if not isinstance(kind, str):
            raise wrong_type(kind, kinds, f"{where}.type")
        cls = target_class(kind)
        if cls is None:
            raise wrong_value(kind, kinds, f"{where}.type")
        rules = rules_for(cls)
        for name, item_value in item.items():
            if name in rules and name != "format":
                rules[name](item_value, sub(where, name))
    try:
        return parse_targets(list(value), key)
    except TargetError as err:  # "printer.targets[0].queue: the CUPS queue name..."
        where, _, problem = str(err).partition(": ")
        raise ConfigError(problem, where) from None

