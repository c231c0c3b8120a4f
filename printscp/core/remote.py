"""AE table entries: the peers printscp connects to, written ``AE@HOST:PORT``."""

from __future__ import annotations

from dataclasses import dataclass

from printscp.core.errors import ConfigError


@dataclass(frozen=True)
class RemoteAE:
    """A peer we connect to: C-MOVE destination, storage commitment requester..."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> RemoteAE:
        """``AE@HOST:PORT``."""
        ae, _, rest = text.partition("@")
        host, _, port = rest.rpartition(":")
        try:
            number = int(port)
        except ValueError:
            number = -1
        if not ae.strip() or len(ae.strip()) > 16 or not host or not 0 < number < 65536:
            raise ConfigError(f"{text!r} is not AE@HOST:PORT (an AE title of 1 to 16 "
                              "characters, a port 1-65535)")
        return cls(ae.strip(), host, number)
