"""One run at a time: manual backups, the daemon and scheduled jobs share this lock.

An advisory ``flock`` is released by the kernel when the holder dies, even by
SIGKILL, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from smsbak.errors import BusyError
from smsbak.paths import PRIVATE_FILE, ensure_private_dir


class RunLock:
    def __init__(self, path: Path, busy_message: str = "another smsbak run is in progress") -> None:
        self.path = path
        self.busy_message = busy_message
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise BusyError(
                f"{self.busy_message}{f' (pid {holder})' if holder else ''}",
                "wait for it to finish (`smsbak status` shows it), then try again",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def holder_pid(self) -> int | None:
        """The pid written by the process holding the lock, if it is held."""
        if not self.is_held_elsewhere():
            return None
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_held_elsewhere(self) -> bool:
        """For status and doctor: is some other process running right now?"""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
