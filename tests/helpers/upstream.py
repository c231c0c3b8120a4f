"""DCMTK's print SCP (``dcmprscp``) as an upstream film printer for tests.

It stores what it is asked to print as Stored Print (``SP_*.dcm``) and Hardcopy
Grayscale images (``HG_*.dcm``) in its database folder, which tests read back.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from helpers.dcmtk import tool
from helpers.net import free_port, wait_for_port

DCMPRSCP_CFG = r"""[[GENERAL]]
[DATABASE]
Directory = {db}
[NETWORK]
aetitle = DCMPRSCP
[[COMMUNICATION]]
[UPSTREAM]
Aetitle = UPSTREAM
Hostname = localhost
Port = {port}
Type = LOCALPRINTER
BorderDensity = 150\20\BLACK\WHITE
DisplayFormat = {display_formats}
EmptyImageDensity = 20\BLACK\WHITE
FilmDestination = MAGAZINE\PROCESSOR
FilmSizeID = {film_sizes}
MagnificationType = REPLICATE\BILINEAR\CUBIC\NONE
MaxDensity = 320
MediumType = PAPER\CLEAR FILM\BLUE FILM
MinDensity = 20
PresentationLUTMatchRequired = false
ResolutionID = STANDARD\HIGH
Supports12Bit = true
SupportsDecimateCrop = true
SupportsImageSize = true
SupportsPresentationLUT = true
SupportsTrim = true
"""


@contextlib.contextmanager
def running_dcmprscp(folder: Path, film_sizes: str = "8INX10IN\\14INX17IN",
                     port: int | None = None, display_formats: str = "1,1\\2,2\\3,4"
                     ) -> Iterator[tuple[int, Path]]:
    """dcmprscp as UPSTREAM@127.0.0.1:port; yields (port, database folder)."""
    port = port or free_port()
    db = folder / "dcmprscp-db"
    db.mkdir(exist_ok=True)
    cfg = folder / "dcmprscp.cfg"
    cfg.write_text(DCMPRSCP_CFG.format(db=db, port=port, film_sizes=film_sizes,
                                      display_formats=display_formats))
    scp = subprocess.Popen([tool("dcmprscp"), "-c", str(cfg), "-p", "UPSTREAM"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, 10, scp)
        yield port, db
    finally:
        scp.terminate()
        scp.wait(10)
