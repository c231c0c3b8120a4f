"""Hypothesis budgets and the live node the fuzz tests attack.

Profiles: ``ci`` (the default here: a few dozen examples per test, sized so that every
fuzz test together costs about 30-60 s of two cores) and ``long`` (thousands, for a run
by hand).  Choose with ``PRINTSCP_FUZZ_PROFILE=long`` or, when ``tests/fuzz`` is named on
the command line, ``--hypothesis-profile=long``.  No per-example deadline: examples talk
to a node over loopback, and a busy CI machine stretches them; the time bound of every
answer is asserted by the tests themselves (:data:`fuzz.wire.ANSWER_BOUND`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fuzz import wire

_COMMON = {"deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=25, **_COMMON)
settings.register_profile("long", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("PRINTSCP_FUZZ_PROFILE", "ci"))

#: The fuzzers' node: query/retrieve allowed for the fuzzing AE (PS3.4 C-FIND is fuzzed).
NODE_TOML = """
[[remote]]
ae_title = "FUZZER"
host = "127.0.0.1"
port = 1
"""


class LiveNode:
    """An in-process node on a free loopback port and the tracebacks its log got."""

    def __init__(self, folder: Path) -> None:
        from helpers.nodes import make_node

        self.tracebacks = wire.Tracebacks().__enter__()
        self.node = make_node(folder, NODE_TOML)
        self.port = self.node.port
        self.reaped = 0
        self.data = self.node.config.data_path

    def reap(self) -> int:
        """End associations left by BUGS.md B1 (an A-ASSOCIATE-RQ that never decoded:
        the DUL thread has ended, the association waits out the ACSE timeout, and ~50
        of them lock clients out, B4).  Their own tests are in tests/test_attacks.py;
        here they would only hide every later finding.  Returns how many."""
        dead = [a for a in list(self.node.ae.active_associations)
                if a.requestor.primitive is None and not a.dul.is_alive()]
        for assoc in dead:
            assoc.dul.to_user_queue.put(None)  # its acceptor wakes, finds no request, ends
        return len(dead)

    def check_up(self, echo: bool = True) -> None:
        """No traceback was logged; (with ``echo``) C-ECHO is answered Success."""
        self.reaped += self.reap()
        logged = self.tracebacks.take()
        assert not logged, logged
        if echo:
            assert wire.raw_echo(self.port) == 0x0000

    def stop(self) -> None:
        self.node.stop()
        self.tracebacks.__exit__()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """One node per test module (starting one per example would cost seconds each)."""
    node = LiveNode(tmp_path_factory.mktemp("fuzz-node"))
    try:
        yield node
        node.check_up()
        # No association left behind (but those of BUGS.md B1: an A-ASSOCIATE-RQ that did
        # not decode holds its association until the ACSE timeout; remove the filter
        # once it is fixed).
        from helpers.net import wait_until

        def left() -> list[str]:
            return [str(a.requestor.ae_title) for a in node.node.ae.active_associations
                    if not (a.requestor.primitive is None and not a.dul.is_alive())]

        assert wait_until(lambda: not left(), 10), left()
    finally:
        node.stop()
