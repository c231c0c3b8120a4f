"""The ``printscp`` command line: :mod:`~printscp.app.cli.main` builds the parser and
dispatches to one module per subcommand."""
