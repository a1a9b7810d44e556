"""Run safety: one live training run per output folder, and no rank outliving its launcher.

Two runs writing into the same ``OUTPUT_DIR`` overwrite each other's checkpoints. So
:func:`ift_tutorial.training.trainer.train` holds an exclusive *OS file lock* on
``OUTPUT_DIR/.lock`` for as long as it runs. The kernel drops the lock when the
process ends, however it ends (``kill -9`` and the OOM killer included), so a lock
is never left stale. The file holds the holder's PID, which the refusal names.

Under a launcher (``torchrun``, ``accelerate launch``) rank 0 takes the lock and
tells the other ranks its verdict (a broadcast, which is also a barrier) before any
rank writes anything: a refused run stops on every rank with the same message.

``torchrun`` starts each rank in a session of its own, so killing the launcher
with SIGKILL does not reach the ranks: they would run on as orphans, still writing
checkpoints. :func:`die_with_launcher` asks the kernel to SIGKILL this process when
its parent dies (Linux's parent-death signal). It must be SIGKILL: a rank blocked in
a collective never gets to run a Python signal handler.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import time
from pathlib import Path
from types import TracebackType

from ..errors import UserFacingError
from ..paths import display_path

LOCK_NAME = ".lock"
# flock's answers on file systems that have no locks (some FUSE and network mounts,
# such as Google Drive's in Colab): there we warn and go on unlocked.
NO_LOCK_ERRNOS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_warned_no_locks = False


class RunFolderBusy(UserFacingError):
    """Another live process holds the output folder's lock."""


def holder_pid(folder: str | os.PathLike[str]) -> int | None:
    """The PID written in ``folder/.lock`` (``None`` when empty or unreadable)."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text(encoding="ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _warn_no_locks(folder: Path, err: OSError) -> None:
    global _warned_no_locks
    if not _warned_no_locks:
        _warned_no_locks = True
        print(f"warning: the file system of {display_path(folder)} has no file locks "
              f"({os.strerror(err.errno) if err.errno else err}); nothing stops a second run "
              "from writing into this folder at the same time", file=sys.stderr, flush=True)


def _process_group():
    """``torch.distributed`` once a process group exists, else None (torch not imported)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def _rank_and_world_size() -> tuple[int, int]:
    """The rule of ``distributed.rank()``/``world_size()``, without importing transformers."""
    dist = _process_group()
    if dist is not None:
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class RunLock:
    """An exclusive lock on ``folder/.lock`` held while a run writes into ``folder``.

    A context manager; the lock is released on exit, so the same process can lock the
    folder again afterwards (chapter 7 resumes a run in the same notebook kernel).
    On a single process a held folder is refused on entry; under a launcher only rank 0
    tries the lock, and every rank learns the outcome from :meth:`share_verdict`.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with RunLock(folder) as lock:
        ...     lock.share_verdict()  # a no-op on a single process
        ...     holder_pid(folder) == os.getpid()
        True
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.locked = False  # True while this process holds the OS lock
        self.refusal: str | None = None  # why rank 0 could not take it
        self._fd: int | None = None

    # --- taking and dropping the lock ------------------------------------------------

    def acquire(self) -> bool:
        """Try the lock once. Returns False (and sets :attr:`refusal`) if another holds it.

        On a file system without locks this warns once and returns True, unlocked.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no flock
            _warn_no_locks(self.folder, OSError(errno.ENOSYS, "no fcntl module"))
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not truncated: the PID is the holder's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.refusal = self._busy_message()
            return False
        except OSError as err:
            os.close(fd)
            if err.errno in NO_LOCK_ERRNOS:
                _warn_no_locks(self.folder, err)
                return True
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd, self.locked = fd, True
        return True

    def _busy_message(self) -> str:
        pid = holder_pid(self.folder)
        for _ in range(10):  # the holder may be between its flock and writing its PID
            if pid is not None:
                break
            time.sleep(0.05)
            pid = holder_pid(self.folder)
        who = f"PID {pid}" if pid is not None else "a process whose PID is not yet written"
        return (f"{display_path(self.folder)} is in use by another training run ({who}); "
                "wait for it to finish or stop it, or train into another output folder")

    def release(self) -> None:
        """Drop the lock (idempotent). The empty file stays: deleting it would race a newcomer."""
        if self._fd is None:
            return
        import fcntl

        fd, self._fd, self.locked = self._fd, None, False
        try:
            os.ftruncate(fd, 0)  # a PID in the file means a live holder
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- agreeing across ranks -----------------------------------------------------

    def share_verdict(self) -> None:
        """Every rank learns rank 0's verdict; a refused run raises on all of them.

        A collective under a launcher (call it on every rank once the process group
        exists, before writing anything); on a single process it only re-raises a refusal.
        """
        verdict = [self.refusal]
        dist = _process_group()
        if dist is not None and dist.get_world_size() > 1:
            dist.broadcast_object_list(verdict, src=0)  # a collective: also a barrier
        if verdict[0] is not None:
            raise RunFolderBusy(verdict[0])

    def __enter__(self) -> RunLock:
        rank, world_size = _rank_and_world_size()
        if rank == 0 or world_size == 1:
            if not self.acquire() and world_size == 1:
                raise RunFolderBusy(self.refusal)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


# --- ranks die with their launcher ---------------------------------------------------


def die_with_launcher() -> bool:
    """Under a launcher, have the kernel SIGKILL this rank as soon as its parent dies.

    Linux only (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere, or without a launcher
    (no ``LOCAL_RANK``), a no-op. If the launcher already died before the request took
    effect, the rank exits at once. Returns whether the request was made.

    Example:
        >>> die_with_launcher()  # no LOCAL_RANK here: nothing to do
        False
    """
    if "LOCAL_RANK" not in os.environ or not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The launcher may have died before the request took effect: then the kernel has
    # already given us a new parent (init or a subreaper) and will never signal us.
    if os.getppid() != parent:
        raise SystemExit("error: the launcher of this rank has exited; stopping this rank")
    return True
