"""DCMTK's command-line tools by path, why they are missing, and ``dcmdspfn``'s curves.

pynetdicom installs Python apps of the same names as some DCMTK tools (echoscu,
storescu, findscu, movescu, getscu...) that may come first on PATH: those count only
as Debian installs them, in /usr/bin.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lut.device import DeviceKind

PYNETDICOM_APPS = frozenset({"echoscp", "echoscu", "findscu", "getscu", "movescu", "qrscp",
                             "storescp", "storescu"})


def dcmtk_tool(name: str) -> str | None:
    """The path of DCMTK's ``name`` (Debian's, in /usr/bin, first), None if missing."""
    debian = Path("/usr/bin") / name
    if debian.exists():
        return str(debian)
    return None if name in PYNETDICOM_APPS else shutil.which(name)


def tool(name: str) -> str:
    """The DCMTK binary ``name`` to run (its bare name if it is missing)."""
    return dcmtk_tool(name) or name


def missing(*names: str) -> str | None:
    """Why DCMTK's ``names`` (by default: DCMTK at all) cannot run here; None if they can."""
    absent = [n for n in names or ("dcmdump",) if dcmtk_tool(n) is None]
    if not absent:
        return None
    return f"needs DCMTK's {', '.join(absent)} (apt-get install dcmtk)"


HAVE_DCMTK = missing("storescu", "findscu") is None

#: dcmdspfn's option for the device kind of a characteristic curve file.
INPUT_FLAG = {
    DeviceKind.MONITOR: "+Im",
    DeviceKind.CAMERA: "+Ic",
    DeviceKind.PRINTER: "+Ip",
    DeviceKind.SCANNER: "+Is",
}


@dataclass
class Curves:
    """The columns and JND header line of a ``dcmdspfn +Og`` file, as printed."""

    ddl: list[str]
    cc: list[str]
    gsdf: list[str]
    psc: list[str]
    jnd_line: str


def dcmdspfn(lut_file: Path, kind: DeviceKind, folder: Path, opts: list[str] = ()) -> Curves:
    """Run ``dcmdspfn +Og`` on a characteristic curve file (its output in ``folder``)."""
    out = folder / "curves.txt"
    subprocess.run([tool("dcmdspfn"), "-q", INPUT_FLAG[kind], str(lut_file), "+Og", str(out),
                    *opts], check=True, capture_output=True, timeout=30)
    rows, jnd_line = [], ""
    for line in out.read_text().splitlines():
        if line.startswith("# Barten JND index range"):
            jnd_line = line.split(":", 1)[1].strip()
        if line[:1].isdigit():
            rows.append(line.split("\t"))
    ddl, cc, gsdf, psc = (list(col) for col in zip(*rows, strict=True))
    return Curves(ddl, cc, gsdf, psc, jnd_line)


class PrintClient:
    """DCMTK as a modality printing: dcmpsprt renders images into a Stored Print object,
    dcmprscu sends it as one Film Session with one Film Box to a Print SCP (``Aetitle``
    PRINTSCP at 127.0.0.1:``port``).  dcmprscu exits 0 even on failure, so its log is
    checked for E:/F: lines."""

    def __init__(self, tmp: Path, port: int, tls: Path | None = None) -> None:
        """``tls``: a folder with ``client.pem``, ``client.key`` and the CA's
        certificate linked as ``cacerts/HASH.0`` (DCMTK's [TLS] layout): print over TLS."""
        self.tmp = tmp
        self.port = port
        self.tls = tls
        self.db = tmp / "db"
        self.db.mkdir()
        self.luts = tmp / "lut"
        self.luts.mkdir()

    def config(self, **printer: str) -> Path:
        keys = {"Aetitle": "PRINTSCP", "DisplayFormat": "1,1\\2,2\\3,4\\3,1\\2,1",
                "SupportsPresentationLUT": "true", **printer}
        tls = ""
        if self.tls is not None:
            tls = (f"[TLS]\nTLSDirectory = {self.tls}\nCACertificateDirectory = "
                   f"{self.tls / 'cacerts'}\nUsePEMFormat = true\n")
            keys.update(UseTLS="true", Certificate="client.pem", PrivateKey="client.key",
                        TLSProfile="BCP195-ND")
        text = (f"[[GENERAL]]\n[DATABASE]\nDirectory = {self.db}\n[NETWORK]\naetitle = DCMTK_PRN\n"
                f"[LUT]\nDirectory = {self.luts}\n{tls}"
                "[[COMMUNICATION]]\n[TARGET]\nType = PRINTER\nHostname = 127.0.0.1\n"
                f"Port = {self.port}\n"
                + "".join(f"{k} = {v}\n" for k, v in keys.items())
                + "[[LUT]]\n[GAMMA]\ndescription = test\nfilename = gamma.lut\n")
        path = self.tmp / "dcmtk.cfg"
        path.write_text(text)
        return path

    def print(self, images: list[Path], layout: tuple[int, int] = (1, 1),
              psprt: list[str] = (), prscu: list[str] = (), fmt: str | None = None,
              **printer: str) -> str:
        cfg = self.config(**printer)
        for old in self.db.glob("*.dcm"):
            old.unlink()
        run = subprocess.run(
            [tool("dcmpsprt"), "-c", str(cfg), "-p", "TARGET", "--nospool", "--layout",
             str(layout[0]), str(layout[1]), *psprt, *map(str, images)],
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        [sp] = self.db.glob("SP_*.dcm")
        if fmt:
            # Image Display Format of the Film Box Content Sequence item.
            subprocess.run([tool("dcmodify"), "-nb", "-m", f"(2130,0030)[0].(2010,0010)={fmt}",
                            str(sp)],
                           check=True, capture_output=True)
        log = subprocess.run(
            [tool("dcmprscu"), "-c", str(cfg), "-p", "TARGET", "-d", "--dump", *prscu, str(sp)],
            capture_output=True, text=True, timeout=60)
        out = log.stdout + log.stderr
        errors = [ln for ln in out.splitlines() if ln.startswith(("E:", "F:"))]
        assert not errors, "\n".join(errors)
        return out
