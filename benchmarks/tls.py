"""Benchmark: C-STORE over DICOM TLS 1.3 against plain TCP, printscp beside Orthanc.

Run:  python benchmarks/tls.py [--rounds N] [--instances N] [--only printscp-TLS,orthanc-TLS]

The question (issue 17): does TLS cost printscp more than it costs Orthanc?  Four
servers take turns in one run, round by round: printscp plain, Orthanc plain, printscp
TLS, Orthanc TLS (the order rotating by one each round, as in ``archive.py``), each
sent ``--instances`` CT images (512x512, 16-bit, Explicit VR Little Endian, about
526 KB each, generated once with ``archive.py``'s generator) over one association,
then over four at once (four client processes, a quarter each).  Every run gets a
fresh server and an empty data directory.  Reported per server and mode, medians of
``--rounds``: instances/s and MB/s (10^6 bytes of the files sent, from the first
client's start to the last one's exit), for one and four associations; the TLS cost
= plain throughput / TLS throughput, per server; and the ratio of ratios = Orthanc's
TLS cost / printscp's, which must be >= 1 (TLS costs printscp no more than it costs
Orthanc).  Both are computed from the medians and round by round (the four runs of a
round met the same state of this shared machine).  Beside them, each server's CPU per
instance (user + system time of its processes, from /proc, during the run) and what
TLS adds to it: the server's own work, which the disk's slow spells move less than
they move the throughput.

Servers: ``printscp serve`` as ``archive.py`` starts it (``--workers 2``), with a
``--config`` holding ``[tls] enabled = true`` (``min_version = "1.3"``: a TLS 1.2
fallback would fail the run instead of being measured; the plain listener stays, as
by default, idle); Orthanc 1.10.1 (Debian's ``orthanc``, never its system service: its
own process on free loopback ports, a temporary storage directory, ``archive.py``'s
configuration plus ``DicomTlsEnabled``, ``DicomTlsCertificate``,
``DicomTlsPrivateKey``, ``DicomTlsTrustedCertificates`` and
``DicomTlsRemoteCertificateRequired``; 1.10.1 has no minimum-version option, so what
it negotiates is checked instead).  Both servers require the client's certificate and
trust only the run's CA.

Client: DCMTK's ``storescu`` for every server (``+tls client.key client.crt +cf
ca.crt``, its default BCP 195 non-downgrading profile: TLS 1.2 or newer, so TLS 1.3
with both servers), run with ``TCP_NODELAY=1`` as in ``archive.py``.  The same C++
client for both servers, so the client's own share of the TLS work is the same on
both sides of the ratio; a Python client (pynetdicom ``tls_args``) would add its own
interpreter's cost to the one being measured.  Before the rounds, a handshake with
the client's certificate checks what each TLS server negotiates (printed: protocol,
cipher suite).

Certificates: a CA, a server certificate (subjectAltName IP 127.0.0.1 and DNS
localhost, serverAuth) and a client certificate (clientAuth), RSA 2048, SHA-256,
valid for a day, made by ``openssl`` in the run's temporary directory and deleted
with it.

Checked: every storescu exits 0 and the server holds every instance sent (printscp:
the files in its archive; Orthanc: ``/statistics``); a failed run counts as missing
and is listed under PROBLEMS (exit status 1).  Clients and servers share the
machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from archive import (  # noqa: E402
    DCMTK,
    ORTHANC_BIN,
    DataSet,
    OrthancServer,
    Plan,
    PrintSCPServer,
    free_port,
    median,
    say,
    timed_parallel,
    wait_port,
)
from baseline import ratio_line, turns  # noqa: E402

PRODUCTS = ("printscp", "orthanc")
ASSOCIATIONS = (1, 4)
SERVERS = ("printscp-plain", "orthanc-plain", "printscp-TLS", "orthanc-TLS")


# -- certificates -----------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    """The run's PKI: a CA that signed a server and a client certificate (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        """A fresh CA, server and client, with ``openssl`` (no Python dependency)."""
        folder.mkdir(parents=True)
        days = ["-days", "1", "-sha256"]

        def openssl(*args: str) -> None:
            out = subprocess.run(["openssl", *args], cwd=folder, capture_output=True,
                                 text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"openssl {args[0]}: {out.stderr[-500:]}")

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                "-out", "ca.crt", "-subj", "/CN=printscp benchmark CA", *days,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for leaf, usage, san in (("server", "serverAuth", "IP:127.0.0.1,DNS:localhost"),
                                 ("client", "clientAuth", "DNS:storescu")):
            (folder / f"{leaf}.ext").write_text(
                f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage={usage}\n"
                f"keyUsage=critical,digitalSignature,keyEncipherment\nsubjectAltName={san}\n")
            openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{leaf}.key",
                    "-out", f"{leaf}.csr", "-subj", f"/CN=benchmark {leaf}")
            openssl("x509", "-req", "-in", f"{leaf}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", f"{leaf}.crt", "-extfile", f"{leaf}.ext", *days)
        return cls(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                   folder / "client.crt", folder / "client.key")

    def storescu_args(self) -> list[str]:
        return ["+tls", str(self.client_key), str(self.client_cert), "+cf", str(self.ca)]

    def handshake(self, port: int) -> str:
        """What a server negotiates with a client offering TLS 1.2 and 1.3 and the
        client's certificate: "TLSv1.3 TLS_AES_256_GCM_SHA384"."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        with (socket.create_connection(("127.0.0.1", port), 10) as raw,
              context.wrap_socket(raw, server_hostname="localhost") as conn):
            return f"{conn.version()} {(conn.cipher() or ('?',))[0]}"


# -- servers ----------------------------------------------------------------------------
class Printscp(PrintSCPServer):
    """``archive.py``'s printscp (``--workers 2``), with a [tls] listener when given
    certificates; storescu then goes to that listener."""

    product = "printscp"

    def __init__(self, move_port: int, certs: Certificates | None) -> None:
        super().__init__(move_port, 2)
        self.certs = certs
        self.name = f"printscp {'TLS' if certs else 'plain'}"
        self.tls_port = 0

    def serve_args(self, work: Path) -> list[str]:
        if self.certs is None:
            return []
        self.tls_port = free_port()
        c = self.certs
        config = work / "printscp.toml"
        config.write_text(
            f'[tls]\nenabled = true\nport = {self.tls_port}\ncertificate = "{c.server_cert}"\n'
            f'private_key = "{c.server_key}"\nca_certificates = "{c.ca}"\n'
            'require_client_certificate = true\nmin_version = "1.3"\nplain = true\n')
        return ["--config", str(config)]

    def start(self, work: Path) -> None:
        super().start(work)
        if self.certs is not None:
            assert self.proc is not None
            wait_port(self.tls_port, self.proc)

    @property
    def store_port(self) -> int:
        return self.tls_port if self.certs is not None else self.port

    def stored(self, work: Path) -> int:
        return sum(1 for _ in (work / "data" / "archive").rglob("*.dcm"))


class Orthanc(OrthancServer):
    """``archive.py``'s Orthanc, with DICOM TLS on its port when given certificates."""

    product = "orthanc"

    def __init__(self, move_port: int, certs: Certificates | None) -> None:
        super().__init__(move_port)
        self.certs = certs
        self.name = f"orthanc {'TLS' if certs else 'plain'}"

    def extra_config(self, work: Path) -> dict[str, Any]:
        c = self.certs
        if c is None:
            return {}
        return {"DicomTlsEnabled": True, "DicomTlsCertificate": str(c.server_cert),
                "DicomTlsPrivateKey": str(c.server_key),
                "DicomTlsTrustedCertificates": str(c.ca),
                "DicomTlsRemoteCertificateRequired": True}

    @property
    def store_port(self) -> int:
        return self.port

    def stored(self, work: Path) -> int:
        return int(self.statistics()["CountInstances"])


Target = Printscp | Orthanc


# -- measurement ------------------------------------------------------------------------
@dataclass
class Results:
    #: server name -> associations -> one throughput per round (instances/s; NaN: failed)
    rates: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    #: server name -> associations -> the server's CPU ms per instance, per round
    cpu: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    negotiated: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def groups(files: Sequence[Path], n: int) -> list[list[str]]:
    """``files`` in ``n`` near-equal groups, one storescu process each."""
    return [[str(f) for f in files[i::n]] for i in range(n)]


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) spent so far by process ``pid`` and its living
    descendants (printscp's workers, its console; Orthanc is one process)."""
    procs: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3, state
        procs[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, ticks = {pid}, 0
    for _ in range(8):  # depth: serve -> workers -> their render processes
        tree |= {p for p, (ppid, _) in procs.items() if ppid in tree}
    ticks = sum(procs[p][1] for p in tree if p in procs)
    return ticks / os.sysconf("SC_CLK_TCK")


def store_run(server: Target, parts: list[list[str]], work: Path, r: int, res: Results
              ) -> tuple[float, float]:
    """One run against a fresh server: instances/s and the server's CPU ms per instance
    (NaN, NaN if it failed)."""
    folder = work / f"{server.name.replace(' ', '-')}-{len(parts)}-{r}"
    sent = sum(len(p) for p in parts)
    failed, stored, cpu = "", 0, 0.0
    server.start(folder)
    assert server.proc is not None
    try:
        extra = server.certs.storescu_args() if server.certs else []
        cmds = [[str(DCMTK / "storescu"), "-aec", server.aet, *extra, "127.0.0.1",
                 str(server.store_port), *p] for p in parts]
        cpu = tree_cpu(server.proc.pid)
        try:
            elapsed = timed_parallel(cmds)
        except RuntimeError as exc:
            failed = str(exc).splitlines()[0]
        cpu = tree_cpu(server.proc.pid) - cpu
        stored = server.stored(folder)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    mode = f"{len(parts)} assoc"
    if failed or stored != sent:
        res.problems.append(f"{server.name} {mode} round {r + 1}: {stored} of {sent} "
                            f"stored {failed}")
        say(f"  {server.name:15s} {mode:8s} round {r + 1}: FAILED ({stored} of {sent} "
            f"stored) {failed}")
        return float("nan"), float("nan")
    say(f"  {server.name:15s} {mode:8s} round {r + 1}: {sent / elapsed:7.1f} inst/s, "
        f"server CPU {1000 * cpu / sent:5.2f} ms/inst")
    return sent / elapsed, 1000 * cpu / sent


def check_tls(servers: Sequence[Target], work: Path, res: Results) -> None:
    """What each TLS server negotiates (printed; anything but TLS 1.3 is a problem)."""
    for server in servers:
        if server.certs is None:
            continue
        folder = work / f"{server.name.replace(' ', '-')}-handshake"
        server.start(folder)
        try:
            res.negotiated[server.name] = server.certs.handshake(server.store_port)
        except (OSError, ssl.SSLError) as exc:
            res.negotiated[server.name] = f"handshake failed: {exc}"
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
        say(f"  {server.name:15s} negotiates {res.negotiated[server.name]}")
        if not res.negotiated[server.name].startswith("TLSv1.3 "):
            res.problems.append(f"{server.name}: {res.negotiated[server.name]}")


def measure(servers: Sequence[Target], files: Sequence[Path], rounds: int, work: Path,
            res: Results) -> None:
    """Round by round, each mode, every server in turn (the order rotating per round)."""
    for r in range(rounds):
        say(f"round {r + 1} of {rounds}")
        for n in ASSOCIATIONS:
            for server in turns(servers, r):
                rate, cpu = store_run(server, groups(files, n), work, r, res)
                res.rates.setdefault(server.name, {}).setdefault(n, []).append(rate)
                res.cpu.setdefault(server.name, {}).setdefault(n, []).append(cpu)


# -- report -----------------------------------------------------------------------------
def costs(res: Results, product: str, n: int) -> list[float]:
    """``product``'s TLS cost round by round: plain rate / TLS rate of the same round."""
    plain = res.rates[f"{product} plain"][n]
    tls = res.rates[f"{product} TLS"][n]
    return [p / t if t > 0 else float("nan") for p, t in zip(plain, tls, strict=True)]


def report(res: Results, files: Sequence[Path], rounds: int) -> bool | None:
    """Print the tables; whether the ratio of ratios is >= 1 in every mode (None: not
    measured, ``--only`` left a server out)."""
    mb = sum(f.stat().st_size for f in files) / 1e6 / len(files)  # MB per instance
    say(f"\nC-STORE of {len(files)} CT 512x512x16 ({mb * len(files):.1f} MB), DCMTK storescu,"
        f" median of {rounds} rounds")
    head = "".join(f"{f'{n} assoc inst/s':>16s}{'MB/s':>8s}{'CPU ms/inst':>13s}"
                   for n in ASSOCIATIONS)
    say(f"{'server':16s}{head}")
    med = {s: {n: median(v) for n, v in modes.items()} for s, modes in res.rates.items()}
    cpu = {s: {n: median(v) for n, v in modes.items()} for s, modes in res.cpu.items()}
    for server in sorted(med, key=lambda s: SERVERS.index(s.replace(" ", "-"))):
        say(f"{server:16s}" + "".join(f"{med[server][n]:16.1f}{med[server][n] * mb:8.1f}"
                                      f"{cpu[server][n]:13.2f}" for n in ASSOCIATIONS))
    say("(CPU ms/inst: user + system time of the server's processes during the run, per "
        "instance)")
    both = [p for p in PRODUCTS if {f"{p} plain", f"{p} TLS"} <= set(med)]
    if not both:
        return None
    say("\nTLS cost = plain throughput / TLS throughput (1.00: TLS costs nothing)")
    say(f"{'':36s}" + "".join(f"{f'{n} assoc':>10s}" for n in ASSOCIATIONS))
    cost = {p: {n: med[f"{p} plain"][n] / med[f"{p} TLS"][n] for n in ASSOCIATIONS}
            for p in both}
    for p in both:
        say(f"{p + ' TLS cost':36s}" + "".join(f"{cost[p][n]:10.2f}" for n in ASSOCIATIONS))
    for p in both:
        say(f"{p + ' TLS CPU ms/inst added':36s}"
            + "".join(f"{cpu[f'{p} TLS'][n] - cpu[f'{p} plain'][n]:10.2f}"
                      for n in ASSOCIATIONS))
    for p in both:  # the server's own work, which the disk's slow spells move less
        say(f"{p + ' TLS CPU / plain CPU':36s}"
            + "".join(f"{cpu[f'{p} TLS'][n] / cpu[f'{p} plain'][n]:10.2f}"
                      for n in ASSOCIATIONS))
    if len(both) < len(PRODUCTS):
        return None
    rr = {n: cost["orthanc"][n] / cost["printscp"][n] for n in ASSOCIATIONS}
    say(f"{'ratio of ratios orthanc / printscp':36s}" + "".join(f"{rr[n]:10.2f}"
                                                              for n in ASSOCIATIONS))
    say("\nRound by round (a round's runs back to back, so each ratio compares runs that met "
        "the same state of the machine):")
    for n in ASSOCIATIONS:
        for p in PRODUCTS:
            say(f"  {p} TLS cost, {n} assoc: "
                + " ".join(f"{c:.2f}" for c in costs(res, p, n)))
        say("  " + ratio_line(f"ratio of ratios, {n} assoc", costs(res, "orthanc", n),
                              costs(res, "printscp", n), "rounds"))
    met = all(v >= 1 for v in rr.values())
    say("\nTarget, ratio of ratios >= 1 (TLS costs printscp no more than it costs Orthanc): "
        f"{'met' if met else 'NOT met'} ("
        + ", ".join(f"{n} assoc {rr[n]:.2f}" for n in ASSOCIATIONS) + ")")
    return met


def versions() -> str:
    def first(cmd: list[str]) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "?"

    from printscp import __version__
    return (f"printscp {__version__} (Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}); "
            f"Orthanc {first([ORTHANC_BIN, '--version']).split()[-1]}; "
            f"{first([str(DCMTK / 'storescu'), '--version']).strip('$ ')}; "
            f"system {first(['openssl', 'version'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; each sends to all four servers, 1 then 4 associations "
                             "(default 5)")
    parser.add_argument("--instances", type=int, default=300,
                        help="CT images per run (default 300; 4 associations: a quarter each)")
    parser.add_argument("--only", default=",".join(SERVERS),
                        help="comma-separated servers (default: all four): "
                             + ", ".join(SERVERS))
    args = parser.parse_args(argv)
    wanted = [n.strip().replace("-", " ") for n in args.only.split(",") if n.strip()]
    unknown = set(wanted) - {n.replace("-", " ") for n in SERVERS}
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.instances < max(ASSOCIATIONS):
        parser.error(f"--rounds >= 1 and --instances >= {max(ASSOCIATIONS)}")
    for need, how in ((DCMTK / "storescu", "apt-get install -y dcmtk"),
                      (Path(ORTHANC_BIN), "apt-get install -y orthanc")):
        if not need.exists():
            print(f"{need} missing ({how})", file=sys.stderr)
            return 2
    if shutil.which("openssl") is None:
        print("openssl missing (apt-get install -y openssl)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    say(f"printscp TLS benchmark: {versions()}; {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; clients and servers on one machine; started "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.")
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        work = Path(tmp)
        certs = Certificates.make(work / "pki")
        data = DataSet(work / "dicom", Plan(store_images=args.instances, retrieve_images=0,
                                            studies=0))
        files = data.store_files
        move_port = free_port()  # archive.py's servers register a move destination
        servers: list[Target] = [Printscp(move_port, None), Orthanc(move_port, None),
                                 Printscp(move_port, certs), Orthanc(move_port, certs)]
        servers = [s for s in servers if s.name in wanted]
        res = Results()
        say("TLS handshake with the client's certificate:")
        check_tls(servers, work, res)
        measure(servers, files, args.rounds, work, res)
        report(res, files, args.rounds)
    say(f"\nTotal run time {time.perf_counter() - t_start:.0f} s.")
    if res.problems:
        say("PROBLEMS:\n  " + "\n  ".join(res.problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
