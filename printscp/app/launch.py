"""The ``printscp`` command's entry point: light, so that ``printscp serve`` keeps a
stop signal from its first instant (:mod:`printscp.app.stopping`), then the command
line proper (:mod:`printscp.app.cli.main`)."""

from __future__ import annotations

import sys

#: Modules that libraries printscp uses import for features a node never uses, made
#: lazy for ``printscp serve``: imported for real on first use, if ever.  pydicom imports
#: requests (with urllib3, charset_normalizer, http, email: 0.1-0.25 s of CPU) for its
#: test-data downloads only; the node listens that much sooner.
LAZY_FOR_SERVE = ("requests",)


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        from printscp.app.stopping import keep

        keep()
        for name in LAZY_FOR_SERVE:
            lazy_import(name)
    from printscp.app.cli.main import main as cli_main

    return cli_main()


def lazy_import(name: str) -> None:
    """Put a stand-in for ``name`` in :data:`sys.modules`: ``import name`` costs nothing,
    and the first attribute looked up on it imports the real module (which then replaces
    it).  (importlib's LazyLoader does not do: the import statement itself reads the
    module's ``__spec__``, which loads it.)"""
    import importlib.util
    import types

    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return

    class StandIn(types.ModuleType):
        def __getattr__(self, attribute: str) -> object:
            if sys.modules.get(name) is self:
                del sys.modules[name]
            import importlib

            module = importlib.import_module(name)
            self.__dict__.update(module.__dict__)
            return getattr(module, attribute)

    stand_in = StandIn(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in
