"""The archive's files: each instance stored as received, durably, under validated UIDs.

A received data set is first written to a temporary file in ``<archive>/.incoming``
and fsynced at once by a thread of :data:`SYNCERS` (fsync releases the GIL), so that
the disk works while the data set is decoded and checked; storing then only waits
for what is left of that fsync.  For a small instance the fsync (0.8 ms on a virtual
disk) was the larger part of a C-STORE's time on one association, spent idle after
the checks; overlapped with them it mostly disappears.  (``sync_file_range``, which
only started the writeback, left the journal commit and the disk flush to the fsync.)

The file's SHA-256 comes from the caller when it
was taken as the data set arrived (the network path hashes each fragment between
reads), else it is taken on the storing thread (hashlib releases the GIL): handing
it to a pool thread, as before, cost more in thread wake-ups than the overlap won.
A refused data set's file is deleted once its fsync is over.  An accepted one is
renamed to
``<study>/<series>/<sop instance>.<8 hex>.dcm`` (the hex part is the start of its
SHA-256, so a replacement never overwrites the file the index points to with other
content) and the series folder fsynced (a folder made for it is fsynced in its
parent).  Only then is the index row written (see :mod:`printscp.archive.index`);
its commit is what makes the instance stored.  A crash before the commit leaves at
worst a complete file no row names (an orphan, which ``printscp archive verify``
reports) or a temporary file; the index never names a file that is incomplete or
whose checksum it does not hold.

Files are deleted only while the index's writer lock is held (a replaced copy, a
duplicate the policy does not keep), and a writer checks, under that lock, that
its file is still in place before indexing it: so a concurrent store of the same
instance cannot delete a file just indexed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import queue
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from printscp.core.files import fsync_dir

#: A UID as PS3.5 9.1 defines it: digits and dots, no leading zeros in a component,
#: at most 64 characters.  Only such strings ever become path components.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

#: Temporary names: unique in this process; O_EXCL guards against other processes'
#: and a previous run's leftovers.
_TEMP_NAMES = itertools.count()


def valid_uid(value: object) -> bool:
    text = str(value or "")
    return 0 < len(text) <= 64 and _UID.match(text) is not None


@dataclass(frozen=True)
class StagedFile:
    """A complete, fsynced file under a temporary name, to be put in place."""

    temp: str  #: absolute path of the temporary file
    final: str  #: absolute path once in place
    relative: str  #: ``final`` relative to the archive folder (what the index holds)
    sha256: str
    size: int
    data: bytes = field(repr=False)  #: the content, to write again if it was replaced


class PendingWrite:
    """A temporary file written, its fsync under way on a :data:`SYNCERS` thread;
    :meth:`finish` waits for it and hands the file over (to be renamed into place),
    :meth:`discard` deletes it if not.

    An error while writing is kept and raised by :meth:`finish`, so that a data set
    that is refused anyway gets its refusal, as if it had been checked first.
    """

    def __init__(self, data: bytes, digest: str, path: str = "", fd: int = -1,
                 error: OSError | None = None, synced: FsyncJob | None = None) -> None:
        self.data = data
        self.digest = digest  #: the SHA-256 of ``data``, hex
        self._path = path
        self._fd = fd
        self._error = error
        self._synced = synced

    def finish(self) -> str:
        """The temporary file, complete and fsynced, now the caller's to rename or
        delete (raises what writing or the fsync raised)."""
        if self._error is not None:
            raise self._error
        path, fd, synced = self._path, self._fd, self._synced
        self._path, self._fd, self._synced = "", -1, None
        try:
            if synced is not None:
                synced.wait()
            else:
                os.fsync(fd)
        except BaseException:
            _close_and_remove(fd, path)
            raise
        os.close(fd)
        return path

    def discard(self) -> None:
        """Delete the temporary file unless :meth:`finish` handed it over (once its
        fsync, if under way, is over: its descriptor is not closed under it)."""
        if self._fd >= 0:
            if self._synced is not None:
                with contextlib.suppress(OSError):
                    self._synced.wait()
            _close_and_remove(self._fd, self._path)
            self._path, self._fd, self._synced = "", -1, None


class FsyncJob:
    """One file's fsync, handed to a :data:`SYNCERS` thread; :meth:`wait` for it.

    A lock held until the fsync is over is the cheapest wait there is: a
    ``concurrent.futures`` pool (submit, Future, Condition) took a tenth of the
    storing thread's time for a small instance."""

    __slots__ = ("_done", "error", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.error: OSError | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def run(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as exc:
            self.error = exc
        finally:
            self._done.release()

    def wait(self) -> None:
        """Return once the fsync is over; raise what it raised."""
        with self._done:
            pass
        if self.error is not None:
            raise self.error


class _Syncers:
    """The threads that fsync incoming files, started on first use in each process
    (daemons: a pending fsync is waited for by the store that asked for it)."""

    def __init__(self, threads: int = 4) -> None:
        self.threads = threads
        self._queue: queue.SimpleQueue[FsyncJob] = queue.SimpleQueue()
        self._pid = 0
        self._lock = threading.Lock()

    def fsync(self, fd: int) -> FsyncJob:
        """``os.fsync(fd)`` under way on a syncer thread."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    for n in range(self.threads):
                        threading.Thread(target=self._run, args=(self._queue,), daemon=True,
                                         name=f"printscp-fsync-{n}").start()
                    self._pid = os.getpid()
        job = FsyncJob(fd)
        self._queue.put(job)
        return job

    @staticmethod
    def _run(jobs: queue.SimpleQueue[FsyncJob]) -> None:
        while True:
            jobs.get().run()


#: One per process: four threads, the fsyncs of four storing associations at once.
SYNCERS = _Syncers()


def _complete(fd: int, path: str) -> None:
    """Fsync and close ``fd``, the file at ``path``; delete it if that fails."""
    try:
        os.fsync(fd)
    except BaseException:
        _close_and_remove(fd, path)
        raise
    os.close(fd)


def _close_and_remove(fd: int, path: str) -> None:
    os.close(fd)
    remove(path)


class ArchiveFiles:
    """Instance files under ``root`` (``<data_dir>/archive``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming = self.root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._incoming = str(self.incoming)
        self._remove_abandoned()

    def _remove_abandoned(self) -> None:
        """Delete temporary files of processes that died mid-store (a crash or kill -9):
        never acknowledged, so nothing is lost; a live worker's files are left alone."""
        for path in self.incoming.glob(".tmp-*"):
            try:
                pid = int(path.name.split("-")[1])
                os.kill(pid, 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)
            except (ValueError, IndexError, PermissionError):
                continue

    def write(self, data: bytes, sha256: str | None = None) -> PendingWrite:
        """Write ``data`` (a Part 10 file) to a temporary file and start its fsync;
        the caller meanwhile checks it, then :meth:`stage` waits for the fsync (or it
        is discarded)."""
        try:
            path, fd = self._write_temp(data)
        except OSError as exc:
            return PendingWrite(data, "", error=exc)  # finish() raises it: no file to name
        return PendingWrite(data, sha256 or _sha256(data), path, fd, synced=SYNCERS.fsync(fd))

    def stage(self, pending: PendingWrite, study_uid: str, series_uid: str, sop_uid: str
              ) -> StagedFile:
        """The written file, fsynced, with its checksum and final name."""
        for uid in (study_uid, series_uid, sop_uid):
            if not valid_uid(uid):
                raise ValueError(f"{uid!r} is not a valid UID")
        data = pending.data
        digest = pending.digest
        relative = f"{study_uid}/{series_uid}/{sop_uid}.{digest[:8]}.dcm"
        return StagedFile(pending.finish(), f"{self._root}/{relative}", relative, digest,
                          len(data), data)

    def place(self, staged: StagedFile) -> None:
        """Rename the staged file to its final name, durably (before it is indexed)."""
        try:
            self._rename(staged.temp, staged.final)
        except BaseException:
            remove(staged.temp)
            raise
        fsync_dir(os.path.dirname(staged.final))

    def ensure_placed(self, staged: StagedFile) -> None:
        """Put the file back if a concurrent store of the same instance deleted it
        (call under the index's writer lock, where files are deleted)."""
        if not os.path.exists(staged.final):
            path, fd = self._write_temp(staged.data)
            _complete(fd, path)
            self.place(replace(staged, temp=path))

    def _write_temp(self, data: bytes) -> tuple[str, int]:
        """A new temporary file holding ``data`` (its path and descriptor, still open)."""
        while True:
            path = f"{self._incoming}/.tmp-{os.getpid()}-{next(_TEMP_NAMES)}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o644)
            except FileExistsError:
                continue
            try:
                os.fchmod(fd, 0o644)  # whatever the umask: readable by the archive's readers
                _write_all(fd, data)
            except BaseException:
                _close_and_remove(fd, path)
                raise
            return path, fd

    def _rename(self, temp: str, final: str) -> None:
        """Rename ``temp`` to ``final``, making the folders when missing (found by the
        rename failing, not checked before each file)."""
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            if not os.path.exists(temp):
                raise
            self._make_folders(os.path.dirname(final))
            os.replace(temp, final)

    def _make_folders(self, folder: str) -> None:
        """Create the study and series folders, each made durable in its parent."""
        study = os.path.dirname(folder)
        for path, parent in ((study, self._root), (folder, study)):
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            fsync_dir(parent)

    def absolute(self, relative: str) -> Path:
        """The file ``relative`` names, symbolic links resolved; ValueError if that is
        outside the archive.  Folders are resolved once each (a study's files share
        theirs, and realpath costs an lstat a component: 4 ms for the files of a
        100-instance series, most of a WADO-RS's time before its first byte); the file
        itself is resolved only if it is a link."""
        folder, name = os.path.split(relative)
        real = self._real_folder(folder)
        path = os.path.join(real, name)
        if not name or name in (".", "..") or os.path.islink(path):
            path = os.path.realpath(path)
        if not path.startswith(self._real_root + os.sep):
            raise ValueError(f"{relative!r} is outside the archive")
        return Path(path)

    def _real_folder(self, folder: str) -> str:
        cache = self._real_folders
        real = cache.get(folder)
        if real is None:
            real = os.path.realpath(os.path.join(self._real_root, folder))
            if len(cache) >= 4096:
                cache.clear()
            cache[folder] = real
        return real

    @functools.cached_property
    def _real_folders(self) -> dict[str, str]:
        return {}

    @functools.cached_property
    def _real_root(self) -> str:
        return os.path.realpath(self._root)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def remove(path: str) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
