"""The HL7 MLLP listener beside the DICOM node (``[hl7] enabled``).

``printscp serve`` starts it once the DICOM side accepts, in the process that also runs
the console: the node itself with one worker, the parent of the workers otherwise.  One
listener, whatever the number of workers: the inbox applies one message at a time
(:mod:`printscp.hl7.mllp`), and the worklist it writes is the data directory's, which
every worker's C-FIND reads.  It is started after the workers are forked, so they do
not inherit its socket or its threads.
"""

from __future__ import annotations

from typing import Any

from printscp.config import NodeConfig


def start_hl7(config: NodeConfig) -> Any:
    """The running :class:`~printscp.hl7.mllp.MllpServer` on ``[hl7]`` bind:port (the
    node's bind by default); OSError if it cannot listen, ConfigError for a bad
    certificate."""
    from printscp.core import audit
    from printscp.hl7.inbox import Inbox
    from printscp.hl7.mllp import MllpLimits, MllpServer

    if not audit.configured():  # the workers' parent, without a console: the inbox's
        # order and patient record events, and refused TLS handshakes, are audited here
        audit.configure(config.data_path, config.audit, ae_title=config.ae_title)
    c = config.hl7
    ssl_context = None
    if c.tls:
        from printscp.core.tls import server_context

        ssl_context = server_context(config.tls)
    inbox = Inbox(config.data_path, c.settings())
    limits = MllpLimits(max_message_bytes=c.max_message_kb * 1024,
                        idle_timeout=c.idle_timeout, max_connections=c.max_connections)
    server = MllpServer(inbox.receive, config.hl7_bind, c.port, limits=limits,
                        ssl_context=ssl_context)
    server.inbox = inbox  # type: ignore[attr-defined]
    return server.start()


def stop_hl7(server: Any) -> None:
    """Stop the listener (no thread left) and close the inbox if it has anything open."""
    if server is None:
        return
    server.stop()
    close = getattr(getattr(server, "inbox", None), "close", None)
    if callable(close):
        close()
