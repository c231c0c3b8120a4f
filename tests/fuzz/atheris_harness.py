"""Coverage-guided fuzzing (atheris, libFuzzer) of the decoders a peer reaches.

Run for a chosen time, one target or all::

    python -m tests.fuzz.atheris_harness --target pdu --seconds 60
    python -m tests.fuzz.atheris_harness --all --seconds 20      # every target

Targets (each a function of the raw bytes; see :data:`TARGETS`):

``pdu``      pynetdicom's PDU decoders as the DUL thread calls them (first byte: type).
             Any Exception is answered with an A-ABORT (Evt19), so only what escapes
             that (RecursionError, MemoryError) is a crash.
``pdata``    printscp.net.pdata: PDVs of a P-DATA-TF body, the message assembler and the
             command-set parser.  Only PDataError may come out.
``command``  a command set through pynetdicom's DIMSE decoding (the primitive built from
             it): what the DUL thread does with a whole command.
``dataset``  a Print Management data set, decoded as the handlers decode it, then given
             to Film Box N-CREATE and Image Box N-SET: only the errors the handlers answer
             with their own status (StatusError, InvalidAttributeValue...) and
             pydicom's decoding errors (the association is aborted) may come out.

The corpus of each target is ``tests/fuzz/corpus/<target>/``: committed seeds (valid
PDUs, command sets, data sets: ``seed-*``) and what libFuzzer adds while it runs (not
committed; ``--keep`` keeps them).  A crash is written there as ``crash-<sha1>``; each
committed crash is replayed by ``tests/fuzz/test_corpus.py`` as a regression test.
Figures printed at the end: executions, seconds, executions per second, new corpus
entries, crashes.

atheris 3.0 installs from its manylinux wheel on CPython 3.11 here (no clang needed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
TARGET_NAMES = ("pdu", "pdata", "command", "dataset")


# -- the targets (importable without atheris, for the regression tests) -------------------
def target_pdu(data: bytes) -> None:
    from printscp.net.testing import pdu_class

    if len(data) < 1:
        return
    kind = bytes([1 + data[0] % 7])
    cls = pdu_class(kind[0])
    body = data[1:]
    pdu = kind + b"\0" + len(body).to_bytes(4, "big") + body
    try:
        cls().decode(pdu)
    except (RecursionError, MemoryError):
        raise
    except Exception:  # Evt19: an A-ABORT
        return


def target_pdata(data: bytes) -> None:
    from printscp.net import pdata

    assembler = pdata.MessageAssembler()
    try:
        for context_id, control, fragment in pdata.pdvs(memoryview(data)):
            if assembler.add(context_id, control, fragment):
                assembler = pdata.MessageAssembler()
        pdata.parse_command(data)
    except pdata.PDataError:
        return


def target_command(data: bytes) -> None:
    from pynetdicom.dimse_messages import DIMSEMessage
    from pynetdicom.pdu_primitives import P_DATA

    from printscp.net import pdata

    try:
        pdata.parse_command(data)
    except pdata.PDataError:
        return  # the DUL thread aborts before pynetdicom sees it
    message = DIMSEMessage()
    primitive = P_DATA()
    primitive.presentation_data_value_list = [[1, b"\x03" + data]]
    try:
        if message.decode_msg(primitive):
            message.message_to_primitive()
    except (RecursionError, MemoryError):
        raise
    except Exception:  # BUGS.md B5: the DUL loop aborts (with a traceback today)
        return


_STATE = {}


def _print_state():
    """An association's Print Management state with a Film Session, built once."""
    if "st" not in _STATE:
        from pydicom.dataset import Dataset

        from printscp.config import load_config
        from printscp.services.print_management import film_session
        from printscp.services.print_management.state import AssociationState

        config = load_config(None, port=0, data_dir="/tmp/printscp-atheris")
        _STATE["config"] = config
        st = AssociationState(calling_ae="FUZZER", called_ae="PRINTSCP", peer="fuzz",
                              printer=config.printer)
        ds = Dataset()
        ds.NumberOfCopies = "1"
        film_session.n_create(st, "1.2.3.1", ds, little_endian=True,
                              meta="1.2.840.10008.5.1.1.9")
        _STATE["st"] = st
    return _STATE["st"]


def _answered(exc: Exception) -> bool:
    """Whether ``exc`` is one the handlers turn into its own DIMSE status
    (:func:`printscp.services.dimse.error_status`), not a "processing failure" with a
    traceback in the log."""
    from printscp.services import dimse

    return isinstance(exc, dimse.StatusError | dimse.ImageTooLarge | dimse.MissingAttribute
                      | dimse.InvalidAttributeValue | dimse.PrintAttributeError)


def target_dataset(data: bytes) -> None:
    import pydicom
    from pydicom.filereader import read_dataset

    from printscp.services.print_management import film_box, image_box

    if not data:
        return
    implicit = bool(data[0] & 1)
    try:
        ds = read_dataset(io.BytesIO(data[1:]), implicit, True)
        ds.walk(lambda _ds, elem: elem.value)  # as dispatch._decode does
    except (RecursionError, MemoryError):
        raise
    except Exception:  # dispatch._decode: 0x0110 and the association aborted
        return
    st = _print_state()
    st.film_boxes.clear()
    st.image_boxes.clear()
    box_uid = "1.2.3.2"
    try:
        film_box.n_create(st, box_uid, ds, little_endian=True, meta="1.2.840.10008.5.1.1.9")
    except Exception as exc:
        if not _answered(exc):
            raise
    fixed = pydicom.Dataset()
    fixed.ImageDisplayFormat = "STANDARD\\1,1"
    from printscp.outputs.print_scu import reference

    fixed.ReferencedFilmSessionSequence = reference("1.2.840.10008.5.1.1.1", "1.2.3.1")
    st.film_boxes.clear()
    st.image_boxes.clear()
    film_box.n_create(st, box_uid, fixed, little_endian=True, meta="1.2.840.10008.5.1.1.9")
    image = next(iter(st.image_boxes))
    try:
        image_box.n_set(st, image, ds, little_endian=True)
    except Exception as exc:
        if not _answered(exc):
            raise


TARGETS = {"pdu": target_pdu, "pdata": target_pdata, "command": target_command,
           "dataset": target_dataset}


# -- seeds --------------------------------------------------------------------------------
def seeds() -> dict[str, dict[str, bytes]]:
    """Valid inputs of each target: what a conforming peer sends."""
    import numpy as np
    from helpers.print_scu import gray_item
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    from fuzz import wire
    from printscp.net import pdata
    from printscp.outputs.print_scu import reference

    rq = wire.associate_rq([wire.context_item(1), wire.context_item(
        3, wire.CT_IMAGE, [wire.EXPLICIT_LE, wire.IMPLICIT_LE])])
    store = pdata.store_request(1, wire.CT_IMAGE, "1.2.3.4")
    box = Dataset()
    box.ImageDisplayFormat = "STANDARD\\2,2"
    box.FilmOrientation = "PORTRAIT"
    box.ReferencedFilmSessionSequence = reference("1.2.840.10008.5.1.1.1", "1.2.3.1")
    image = Dataset()
    image.ImageBoxPosition = 1
    image.BasicGrayscaleImageSequence = [gray_item(np.arange(16, dtype=np.uint16)
                                                   .reshape(4, 4))]
    return {
        "pdu": {"seed-associate-rq": rq[0:1] + rq[6:],
                "seed-release-rq": b"\x04" + bytes(4),
                "seed-abort": b"\x06" + bytes([0, 0, 2, 6]),
                "seed-p-data": b"\x03" + wire.pdv(1, 3, wire.echo_rq())},
        "pdata": {"seed-echo": wire.pdv(1, 3, wire.echo_rq()),
                  "seed-store-2-pdvs": wire.pdv(1, 3, store) + wire.pdv(1, 2, b"\x08\0\x16\0")},
        "command": {"seed-echo": wire.echo_rq(), "seed-store": store,
                    "seed-n-create": wire.n_create_rq("1.2.840.10008.5.1.1.2", 3)},
        "dataset": {"seed-film-box": b"\x01" + bytes(encode(box, True, True)),
                    "seed-image-box": b"\x01" + bytes(encode(image, True, True)),
                    "seed-image-box-explicit": b"\x00" + bytes(encode(image, False, True))},
    }


def write_seeds() -> None:
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)


# -- running ------------------------------------------------------------------------------
def _fuzz(target: str, argv: list[str]) -> None:
    """In the child: instrument the decoders, then hand over to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=["printscp", "pynetdicom", "pydicom"]):
        import pydicom.filereader  # noqa: F401
        import pynetdicom.dimse_messages
        import pynetdicom.pdu  # noqa: F401

        import printscp.net.pdata
        import printscp.services.print_management.film_box
        import printscp.services.print_management.image_box  # noqa: F401
    function = TARGETS[target]
    if target == "dataset":
        _print_state()

    def one(data: bytes) -> None:
        function(data)

    atheris.Setup([sys.argv[0], *argv], one)
    atheris.Fuzz()


def run(target: str, seconds: int, keep: bool = False) -> dict[str, object]:
    """Fuzz ``target`` for ``seconds`` in a child process; its figures."""
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"printscp-atheris-{target}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    # A fixed seed: the same inputs in the same order on every run (CI's budget is then
    # reproducible; PRINTSCP_ATHERIS_SEED=0 lets libFuzzer pick one).
    seed = os.environ.get("PRINTSCP_ATHERIS_SEED", "1")
    args = [f"-max_total_time={seconds}", f"-seed={seed}", "-print_final_stats=1",
            "-rss_limit_mb=2048",
            "-timeout=10", f"-artifact_prefix={folder}/",
            str(folder if keep else work), str(folder)]
    known = {p.name for p in folder.glob("crash-*")}  # found before, kept as regressions
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "fuzz.atheris_harness", "--child", target,
                           "--", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}"},
                          timeout=seconds + 120)
    elapsed = time.monotonic() - started
    out = done.stderr
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    speed = re.search(r"stat::average_exec_per_sec:\s*(\d+)", out)
    new = re.search(r"stat::new_units_added:\s*(\d+)", out)
    crashes = sorted(p.name for p in folder.glob("crash-*") if p.name not in known)
    figures = {"target": target, "seconds": round(elapsed, 1),
               "executions": int(runs.group(1)) if runs else None,
               "exec_per_second": int(speed.group(1)) if speed else None,
               "new_units": int(new.group(1)) if new else None,
               "exit": done.returncode, "crashes": crashes}
    if done.returncode not in (0,) and not crashes:
        figures["stderr_tail"] = out[-3000:]
    if not keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _fuzz(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=TARGET_NAMES)
    parser.add_argument("--all", action="store_true", help="every target, one after another")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the inputs libFuzzer adds in tests/fuzz/corpus/<target>/")
    parser.add_argument("--write-seeds", action="store_true",
                        help="(re)write the committed seed files and exit")
    parser.add_argument("--json", action="store_true", help="figures as JSON lines")
    options = parser.parse_args(argv)
    if options.write_seeds:
        write_seeds()
        return 0
    targets = TARGET_NAMES if options.all else [options.target or "pdu"]
    failed = False
    for target in targets:
        figures = run(target, options.seconds, options.keep)
        if options.json:
            print(json.dumps(figures), flush=True)
        else:
            print(f"{target}: {figures['executions']} executions in {figures['seconds']} s "
                  f"({figures['exec_per_second']}/s), {figures['new_units']} new corpus "
                  f"units, crashes: {', '.join(figures['crashes']) or 'none'}"
                  + (f"\n{figures['stderr_tail']}" if "stderr_tail" in figures else ""),
                  flush=True)
        failed |= bool(figures["crashes"]) or figures["exit"] != 0
    return 1 if failed else 0


if __name__ == "__main__":
    for path in (str(ROOT / "tests"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    raise SystemExit(main())
