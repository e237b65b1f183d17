"""Where smsbak keeps its files, and making them private to the owner.

``SMSBAK_HOME`` puts everything under one directory (tests, several phones,
portable setups). Without it, configuration and token go under the XDG config
directory and the state database and logs under the XDG data directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def token_file(self) -> Path:
        return self.config_dir / "token.json"

    @property
    def restore_token_file(self) -> Path:
        """A separate login with read access, so the daemon's token stays insert-only."""
        return self.config_dir / "token-restore.json"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "backup.lock"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = env.get("SMSBAK_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(config_dir=root, data_dir=root)
        user_home = Path(env.get("HOME") or Path.home())
        config_base = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config")
        data_base = Path(env.get("XDG_DATA_HOME") or user_home / ".local" / "share")
        return cls(config_dir=config_base / "smsbak", data_dir=data_base / "smsbak")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make sure only the owner can enter it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(PRIVATE_DIR)
    return path


def make_private(path: Path) -> None:
    """Restrict an existing file to its owner (tokens, state, logs)."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE)


@contextlib.contextmanager
def private_file_atomically(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a file that is owner-only from its first byte and appears whole or not at all.

    A crash leaves either the old file or the new one, never a torn token or
    half an archive of someone's messages. ``mode`` is "wb" or "w" (UTF-8).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        binary = "b" in mode
        with os.fdopen(
            fd, mode, encoding=None if binary else "utf-8", newline=None if binary else "\n"
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_private_atomically(path: Path, data: bytes) -> None:
    """For smsbak's own files: the folder is made private too."""
    ensure_private_dir(path.parent)
    with private_file_atomically(path) as handle:
        handle.write(data)
