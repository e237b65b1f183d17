"""The state database: what Gmail has confirmed, and the history of runs.

A message is recorded only after Gmail answered for it, one transaction per
batch, so a crash at any point leaves either "not recorded" (the next run
uploads it again and Gmail merges it by Message-ID) or "recorded and in Gmail".
SQLite in WAL mode keeps ``smsbak status`` readable while a backup writes.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smsbak.errors import StateError
from smsbak.paths import PRIVATE_FILE, ensure_private_dir, make_private

MIGRATIONS: list[str] = [
    # 1: first schema
    """
    CREATE TABLE messages (
        fingerprint TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        date_ms INTEGER NOT NULL,
        gmail_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        uploaded_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_kind_date ON messages (kind, date_ms);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        command TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        result TEXT NOT NULL,
        scanned INTEGER NOT NULL DEFAULT 0,
        uploaded INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: messages Gmail refused for good, so incremental runs and the daemon's watch
    # do not try them again and again (`backup --full` does).
    """
    CREATE TABLE refused (
        fingerprint TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        date_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        refused_at INTEGER NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
_CHUNK = 500  # well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Uploaded:
    """One message Gmail confirmed."""

    fingerprint: str
    kind: str
    date_ms: int
    gmail_id: str
    message_id: str


@dataclass(frozen=True)
class RunCounts:
    scanned: int = 0
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0


SUCCESS = ("ok", "partial")
"""Runs that completed; "partial" means Gmail refused some messages for good."""


@dataclass(frozen=True)
class Run:
    id: int
    command: str
    pid: int
    started_at: int
    ended_at: int | None
    result: str
    counts: RunCounts
    error: str | None


class StateStore:
    """SQLite state; one instance per process, used from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            ensure_private_dir(path.parent)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
            make_private(path)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StateError(
                f"the state database {path} is unusable: {error}",
                "move it aside and run `smsbak backup --full`: messages already in Gmail "
                "are recognised by their Message-ID and not duplicated",
            ) from error
        except OSError as error:
            raise StateError(
                f"cannot open the state database {path}: {error}",
                "check that the smsbak directory exists and belongs to you",
            ) from error

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; a database failure (disk full, locked) becomes a StateError."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            raise StateError(
                f"could not write the state database {self.path}: {error}",
                "check free space; nothing unconfirmed was recorded, so running again is safe",
            ) from error

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state database {self.path} is from a newer smsbak "
                f"(schema {version}, this one knows {SCHEMA_VERSION})",
                "upgrade smsbak (pip install -U smsbak)",
            )
        for number in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    # --- messages -------------------------------------------------------------------

    def known(self, fingerprints: Iterable[str]) -> set[str]:
        """Which of these fingerprints Gmail has already confirmed."""
        return self._present("messages", fingerprints)

    def _present(self, table: str, fingerprints: Iterable[str]) -> set[str]:
        wanted = list(fingerprints)
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT fingerprint FROM {table} WHERE fingerprint IN ({marks})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def record_uploaded(self, items: Sequence[Uploaded]) -> None:
        """Record a batch Gmail confirmed, all or nothing."""
        now = int(time.time())
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO messages "
                "(fingerprint, kind, date_ms, gmail_id, message_id, uploaded_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(u.fingerprint, u.kind, u.date_ms, u.gmail_id, u.message_id, now) for u in items],
            )
            db.executemany(
                "DELETE FROM refused WHERE fingerprint = ?", [(u.fingerprint,) for u in items]
            )

    def record_refused(self, fingerprint: str, kind: str, date_ms: int, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO refused (fingerprint, kind, date_ms, reason, refused_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (fingerprint, kind, date_ms, reason[:500], int(time.time())),
            )

    def refused(self, fingerprints: Iterable[str]) -> set[str]:
        """Which of these Gmail refused for good in an earlier run."""
        return self._present("refused", fingerprints)

    def newest_date_ms(self, kind: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(date_ms) FROM messages WHERE kind = ?", (kind,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def count(self, kind: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM messages WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    # --- runs -----------------------------------------------------------------------

    def start_run(self, command: str) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, pid, started_at, result) VALUES (?, ?, ?, 'running')",
                (command, os.getpid(), int(time.time())),
            )
        return int(cursor.lastrowid or 0)

    def close_interrupted_runs(self) -> int:
        """Mark runs that never finished (killed, crashed) as interrupted.

        Only call this while holding the run lock: then no other run is alive.
        """
        with self._transaction() as db:
            cursor = db.execute("UPDATE runs SET result = 'interrupted' WHERE result = 'running'")
        return cursor.rowcount

    def finish_run(self, run_id: int, result: str, counts: RunCounts, error: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, result = ?, scanned = ?, uploaded = ?, "
                "skipped = ?, failed = ?, error = ? WHERE id = ?",
                (
                    int(time.time()),
                    result,
                    counts.scanned,
                    counts.uploaded,
                    counts.skipped,
                    counts.failed,
                    error,
                    run_id,
                ),
            )

    def last_run(
        self, command: str | None = None, result: str | tuple[str, ...] | None = None
    ) -> Run | None:
        clauses: list[str] = []
        params: list[str] = []
        if command:
            clauses.append("command = ?")
            params.append(command)
        if result:
            results = (result,) if isinstance(result, str) else result
            clauses.append(f"result IN ({','.join('?' * len(results))})")
            params.extend(results)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        row = self._db.execute(
            "SELECT id, command, pid, started_at, ended_at, result, scanned, uploaded, skipped, "
            f"failed, error FROM runs {where} ORDER BY id DESC LIMIT 1",
            params,
        ).fetchone()
        if row is None:
            return None
        return Run(
            id=row[0],
            command=row[1],
            pid=row[2],
            started_at=row[3],
            ended_at=row[4],
            result=row[5],
            counts=RunCounts(scanned=row[6], uploaded=row[7], skipped=row[8], failed=row[9]),
            error=row[10],
        )

    # --- small facts ----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
