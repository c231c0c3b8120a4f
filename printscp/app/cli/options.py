"""Command-line options shared by the subcommands that read a node's data directory
(``jobs``, ``archive``, ``media``, ``worklist``, ``mpps``)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DATA_DIR = "./printscp-data"


def add_data_dir_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"the node's data directory (default: from --config, else "
                        f"{DEFAULT_DATA_DIR})")
    parser.add_argument("--config", metavar="FILE",
                        help="the node's TOML configuration, for its data directory")


def data_dir_of(args: argparse.Namespace) -> Path:
    """``--data-dir`` if given, else the configuration's, else the default; a bad
    configuration raises :class:`~printscp.config.ConfigError`."""
    if args.data_dir:
        return Path(args.data_dir)
    if args.config:
        from printscp.config import load_config

        return load_config(args.config).data_path
    return Path(DEFAULT_DATA_DIR)
