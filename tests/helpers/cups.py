"""A private CUPS daemon with a cups-pdf queue, for end-to-end hardcopy tests.

The system's CUPS (if any) is never touched: this cupsd has its own ServerRoot,
spool, cache, state, log and temp directories in a fresh directory under /tmp,
listens on 127.0.0.1 on a free port only, browses and advertises nothing, and runs
in the foreground as our child (``cupsd -f -c ... -s ...``), killed at teardown.

cups-pdf (the virtual PDF printer backend) is the awkward part: it reads its settings
only from ``/etc/cups`` (compiled in), and picks ``/etc/cups/cups-pdf-NAME.conf``
instead of ``cups-pdf.conf`` when the queue's device URI is ``cups-pdf:/NAME``
(cups-pdf 3.0, Debian 3.0.1).  So each daemon gets a unique NAME (pid and random
suffix, so pytest-xdist workers never share one), writes that one file with its
output, spool and log directories inside its own tree, and removes it at close.
Files left behind by a killed test run are removed when their pid is dead.

The output file is ``<title>-job_<id>.pdf`` (``Label 2``) in :attr:`PrivateCups.out_dir`;
jobs from a user unknown to the system (our ``printscp``) go to ``AnonDirName``, from a
known user to ``Out``: both point at the same directory.  cupsd must run as root, since
the cups-pdf backend (mode 0700) runs as root only then.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from helpers.net import free_port, wait_for_port
from printscp.outputs import ipp

CUPSD = shutil.which("cupsd") or "/usr/sbin/cupsd"
BACKEND = Path("/usr/lib/cups/backend/cups-pdf")
PPD_DIR = Path("/usr/share/ppd/cups-pdf")
CUPS_PDF_CONFIG_DIR = Path("/etc/cups")
_CONF_PREFIX = "cups-pdf-printscp_"


def missing() -> str | None:
    """Why the private CUPS cannot run here (None when it can)."""
    if not Path(CUPSD).exists():
        return "cupsd is not installed (apt-get install cups)"
    if not BACKEND.exists():
        return ("the cups-pdf backend is not installed "
                "(apt-get install printer-driver-cups-pdf)")
    if _ppd() is None:
        return f"no cups-pdf PPD in {PPD_DIR} (apt-get install printer-driver-cups-pdf)"
    for tool in ("lpadmin", "cupsenable", "cupsdisable", "cupsaccept", "cupsreject"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install cups-client)"
    return None


def _ppd() -> Path | None:
    # The no-options PPD: the "opt" one lets PPD defaults override the config file.
    for name in ("CUPS-PDF_noopt.ppd", "CUPS-PDF_opt.ppd"):
        if (PPD_DIR / name).exists():
            return PPD_DIR / name
    return next(iter(sorted(PPD_DIR.glob("*.ppd"))), None) if PPD_DIR.is_dir() else None


def _remove_stale_configs() -> None:
    """Delete cups-pdf configs of earlier runs whose process no longer exists."""
    for conf in CUPS_PDF_CONFIG_DIR.glob(f"{_CONF_PREFIX}*.conf"):
        pid = conf.name[len(_CONF_PREFIX):].split("_")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            conf.unlink(missing_ok=True)
        except PermissionError:
            pass


class PrivateCups:
    """One private cupsd with one enabled, accepting cups-pdf queue."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="printscp-cups-"))
        # Filters run as lp and cups-pdf writes as nobody: the tree must be traversable.
        self.root.chmod(0o755)
        self.queue = f"printscp_{os.getpid()}_{secrets.token_hex(4)}"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.out_dir = self.root / "out"
        self.log_dir = self.root / "log"
        self.config = CUPS_PDF_CONFIG_DIR / f"cups-pdf-{self.queue}.conf"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def server(self) -> str:
        """``host:port`` of the daemon, as the printscp configuration names a server."""
        return f"127.0.0.1:{self.port}"

    @property
    def uri(self) -> str:
        """The queue's IPP URI."""
        return ipp.printer_uri(self.server, self.queue)

    def start(self) -> PrivateCups:
        """Start cupsd, create and enable the queue; RuntimeError with the log if not."""
        _remove_stale_configs()
        for sub in ("etc/ppd", "etc/ssl", "spool", "cache", "state", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o1777)  # filters (user lp) write their temporary files here
        self.out_dir.mkdir(exist_ok=True)
        self.out_dir.chmod(0o777)  # cups-pdf writes as the job's user (or nobody)
        self._write_cups_files_conf()
        self.config.write_text(
            f"Out {self.out_dir}\n"
            f"AnonDirName {self.out_dir}\n"
            f"Spool {self.root / 'cups-pdf-spool'}\n"
            f"Log {self.log_dir}\n"
            "LogType 7\n"
            "Label 2\n"
            "Grp root\n"
            "AnonUMask 0000\n"
            "UserUMask 0022\n")
        for _ in range(3):  # a port taken between probing and binding: try another
            self.port = free_port()
            if self._launch():
                break
        else:
            raise RuntimeError(f"private cupsd did not start:\n{self.log_tail()}")
        self._run("lpadmin", "-p", self.queue, "-E", "-v", f"cups-pdf:/{self.queue}",
                  "-P", str(_ppd()), "-o", "printer-error-policy=abort-job",
                  "-o", "printer-is-shared=false")
        return self

    def _write_cups_files_conf(self) -> None:
        r = self.root
        (r / "etc" / "cups-files.conf").write_text(
            f"ServerRoot {r / 'etc'}\n"
            f"RequestRoot {r / 'spool'}\n"
            f"CacheDir {r / 'cache'}\n"
            f"StateDir {r / 'state'}\n"
            f"TempDir {r / 'tmp'}\n"
            f"AccessLog {self.log_dir / 'access_log'}\n"
            f"ErrorLog {self.log_dir / 'error_log'}\n"
            f"PageLog {self.log_dir / 'page_log'}\n"
            f"Printcap {r / 'printcap'}\n"
            "FileDevice No\n"
            "SystemGroup root\n")

    def _write_cupsd_conf(self) -> None:
        (self.root / "etc" / "cupsd.conf").write_text(
            f"Listen 127.0.0.1:{self.port}\n"
            "Browsing No\n"
            "BrowseLocalProtocols none\n"
            "DefaultShared No\n"
            "WebInterface No\n"
            "LogLevel debug\n"
            "MaxLogSize 0\n"
            "DefaultAuthType None\n"
            "<Location />\n  Order allow,deny\n  Allow from 127.0.0.1\n</Location>\n"
            # No authentication anywhere: lpadmin over TCP needs no root certificate.
            "<Policy default>\n  JobPrivateValues none\n"
            "  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")

    def _launch(self) -> bool:
        self._write_cupsd_conf()
        log = (self.log_dir / "cupsd.out").open("ab")
        self.process = subprocess.Popen(
            [CUPSD, "-f", "-c", str(self.root / "etc" / "cupsd.conf"),
             "-s", str(self.root / "etc" / "cups-files.conf")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        try:
            wait_for_port(self.port, 15, self.process)
        except RuntimeError:  # it exited
            return False
        except TimeoutError:
            self.kill()
            return False
        return True

    def kill(self) -> None:
        """Kill cupsd now (SIGKILL; its filters and backends go with its session)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def close(self) -> None:
        """Kill cupsd and remove everything it and this helper wrote."""
        self.kill()
        self.config.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateCups:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queue control (for failure tests) ---------------------------------------------

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([tool, "-h", self.server, *args], capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {done.stderr.strip()}\n"
                               f"{self.log_tail()}")

    def stop_queue(self) -> None:
        """Stop (disable) the queue: jobs are accepted but stay pending."""
        self._run("cupsdisable", self.queue)

    def start_queue(self) -> None:
        """Restart a stopped queue; pending jobs then print."""
        self._run("cupsenable", self.queue)

    def reject_jobs(self) -> None:
        """Make the queue refuse new jobs (server-error-not-accepting-jobs)."""
        self._run("cupsreject", self.queue)

    def accept_jobs(self) -> None:
        """Let the queue accept jobs again."""
        self._run("cupsaccept", self.queue)

    # -- results ------------------------------------------------------------------------

    def wait_for_job(self, job_id: int, timeout: float = 60.0) -> dict[str, object]:
        """Poll the job until it is completed, aborted or canceled; its attributes."""
        deadline = time.monotonic() + timeout
        while True:
            attrs = ipp.get_job_attributes(self.uri, job_id)
            if attrs["job-state"] in ipp.TERMINAL_JOB_STATES:
                return attrs
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {attrs['job-state']} "
                                   f"{attrs['job-state-reasons']}\n{self.log_tail()}")
            time.sleep(0.1)

    def output_for(self, job_id: int, timeout: float = 10.0) -> Path:
        """The PDF cups-pdf wrote for ``job_id`` (waits for it to appear)."""
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(self.out_dir.glob(f"*-job_{job_id}.pdf"))
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise FileNotFoundError(f"no cups-pdf output for job {job_id} in "
                                        f"{self.out_dir}\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        """The end of cupsd's error log and cups-pdf's log, for failure messages."""
        out = []
        for log in [*sorted(self.log_dir.glob("*_log")), self.log_dir / "cupsd.out"]:
            with contextlib.suppress(OSError):
                text = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


@contextlib.contextmanager
def running_cups() -> Iterator[PrivateCups]:
    """A started :class:`PrivateCups`, closed (daemon killed, files removed) on exit."""
    cups = PrivateCups()
    try:
        yield cups.start()
    finally:
        cups.close()
