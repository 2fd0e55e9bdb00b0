"""One writer per journal: an exclusive ``fcntl.flock`` on the side file ``<journal>.lock``.

The lock is held for the writer's whole lifetime and names its holder (the pid is written into
the file), so a second writer, in this process or another, is refused with a message saying who
holds it. The kernel drops the lock when the holder dies, even by SIGKILL, so a crashed trader
never leaves a stale lock behind; the file itself stays (deleting lock files races). ``flock``
is advisory and local: keep journals off NFS. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fillguard.journal import JournalLockedError, JournalWriteError

__all__ = ["WriterLock", "lock_path"]


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The side file a writer locks: ``<journal>.lock``."""
    journal = Path(path)
    return journal.with_name(journal.name + ".lock")


class WriterLock:
    """The held lock of one journal; :meth:`release` (or the process's death) frees it."""

    def __init__(self, journal: Path) -> None:
        """Take the lock now, or raise ``JournalLockedError`` naming the holder's pid."""
        self.path = lock_path(journal)
        try:
            journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalWriteError(
                f"cannot create its lock file {self.path}: {exc}", path=journal
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            mine = " (this process)" if holder == str(os.getpid()) else ""
            raise JournalLockedError(
                f"another writer holds it: pid {holder}{mine} has {self.path} locked. One "
                "process writes a journal at a time; read it with a read-only open (fillguard "
                "journal list) or stop the other process",
                path=journal,
            ) from None
        except OSError as exc:
            os.close(fd)
            raise JournalWriteError(f"cannot lock {self.path}: {exc}", path=journal) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Free the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
