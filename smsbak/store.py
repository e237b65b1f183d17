"""The state database: what each destination has confirmed, and the history of runs.

Everything is kept per *place*: a destination identity (``gmail:ACCOUNT``,
``imap:USER@HOST:PORT``, ``maildir:/path``) plus the folder (label) the messages
went into, see :func:`place_key`. A backup into another account, server, Maildir or
label therefore finds nothing recorded there and uploads everything; the old place's
state stays, so switching back uploads nothing again. A backup tool must never say
"already backed up" about a place it never wrote to.

A message is recorded only after the destination answered for it, one transaction
per batch. Before it is sent it is recorded as *in flight* with its Message-ID, so a
crash at any point leaves "in flight" (the next run looks it up by Message-ID on a
destination that does not merge copies, or re-sends it to one that does),
"recorded and stored", or "refused". SQLite in WAL mode keeps ``smsbak status``
readable while a backup writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    # 3: everything keyed by the place (destination identity + folder) it belongs to.
    # Rows of older versions get the place '' ("legacy"): claim_legacy() gives them to
    # the Gmail account and labels they were made for, once the wiring knows them.
    """
    CREATE TABLE messages_v3 (
        place TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        date_ms INTEGER NOT NULL,
        gmail_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        uploaded_at INTEGER NOT NULL,
        PRIMARY KEY (place, fingerprint)
    );
    INSERT INTO messages_v3
        SELECT '', fingerprint, kind, date_ms, gmail_id, message_id, uploaded_at FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
    CREATE INDEX messages_by_place_kind_date ON messages (place, kind, date_ms);
    CREATE TABLE refused_v3 (
        place TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        date_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        refused_at INTEGER NOT NULL,
        PRIMARY KEY (place, fingerprint)
    );
    INSERT INTO refused_v3 SELECT '', fingerprint, kind, date_ms, reason, refused_at FROM refused;
    DROP TABLE refused;
    ALTER TABLE refused_v3 RENAME TO refused;
    CREATE TABLE in_flight (
        place TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        date_ms INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (place, fingerprint)
    );
    ALTER TABLE runs ADD COLUMN place TEXT NOT NULL DEFAULT '';
    CREATE TABLE place_meta (
        place TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (place, key)
    );
    INSERT INTO place_meta SELECT '', key, value FROM meta WHERE key IN (
        'sms_complete_through_ms', 'sms_read_with',
        'call_complete_through_ms', 'call_read_with',
        'mms_complete_through_ms', 'mms_read_with'
    );
    DELETE FROM meta WHERE key IN (SELECT key FROM place_meta WHERE place = '');
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
_CHUNK = 500  # well under SQLite's bound-parameter limit
LEGACY = ""
"""The place of rows written before places existed, until claim_legacy() gives them one."""
_LEGACY_RUNS = {"backup": "sms", "backup-mms": "mms", "backup-calls": "call", "restore": "sms"}


def place_key(identity: str, folder: str) -> str:
    """The place a record belongs to: a destination identity and a folder (label) in it.

    Unambiguous whatever either contains (a Maildir path may hold any character),
    and readable in the database.
    """
    return json.dumps([identity, folder], ensure_ascii=False, separators=(",", ":"))


def place_parts(place: str) -> tuple[str, str]:
    """(identity, folder) of a :func:`place_key`."""
    identity, folder = json.loads(place)
    return str(identity), str(folder)


@dataclass(frozen=True)
class Uploaded:
    """One message a destination confirmed; ``gmail_id`` is its id there (historic name)."""

    fingerprint: str
    kind: str
    date_ms: int
    gmail_id: str
    message_id: str


@dataclass(frozen=True)
class InFlight:
    """One message about to be sent, whose outcome a crash would leave unknown."""

    fingerprint: str
    kind: str
    date_ms: int
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
    place: str = LEGACY


OPEN_TIMEOUT = 30.0  # seconds a busy (locked) state database is waited for


class StateStore:
    """SQLite state; one instance per process, used from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            ensure_private_dir(path.parent)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
            make_private(path)
            self._db = sqlite3.connect(path, timeout=OPEN_TIMEOUT, isolation_level=None)
            self._use_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            # The spool's TEMP tables go to a file (owner-only, unlinked at once), not
            # to memory: a first backup of a big phone must stay small (see Spool).
            self._db.execute("PRAGMA temp_store=FILE")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StateError(
                f"the state database {path} is unusable: {error}",
                "move it aside and run `smsbak backup --full`: messages already at the "
                "destination are recognised by their Message-ID and not duplicated",
            ) from error
        except OSError as error:
            raise StateError(
                f"cannot open the state database {path}: {error}",
                "check that the smsbak directory exists and belongs to you",
            ) from error

    def _use_wal(self) -> None:
        """Switch a new database to WAL, also while another connection opens it.

        The switch needs the database to itself, and SQLite answers "locked" at once,
        without its busy wait, when two connections try at the same moment (the daemon's
        watch and its first backup on a new phone): try again for as long as a busy
        database is waited for anyway.
        """
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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
                # Another connection (the daemon's watch and its backup, or a manual
                # backup) may have migrated since the look above: the write lock taken
                # now makes this second look the one that counts.
                if int(db.execute("PRAGMA user_version").fetchone()[0]) > number:
                    continue
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    # --- messages (all per place) ------------------------------------------------------

    def known(self, fingerprints: Iterable[str], place: str) -> set[str]:
        """Which of these fingerprints the destination confirmed at ``place``."""
        return self._present("messages", fingerprints, place)

    def _present(self, table: str, fingerprints: Iterable[str], place: str) -> set[str]:
        rows = self._select_in("fingerprint", table, "fingerprint", fingerprints, place)
        return {row[0] for row in rows}

    def _select_in(
        self, columns: str, table: str, key: str, values: Iterable[str], place: str
    ) -> Iterator[tuple[Any, ...]]:
        """The rows at ``place`` whose ``key`` is one of ``values``, asked in chunks,
        so a batch of any size stays under SQLite's bound-parameter limit."""
        wanted = list(values)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM {table} WHERE place = ? AND {key} IN ({marks})",
                [place, *chunk],
            )

    def record_uploaded(self, items: Sequence[Uploaded], place: str) -> None:
        """Record a batch the destination confirmed at ``place``, all or nothing."""
        now = int(time.time())
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO messages "
                "(place, fingerprint, kind, date_ms, gmail_id, message_id, uploaded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (place, u.fingerprint, u.kind, u.date_ms, u.gmail_id, u.message_id, now)
                    for u in items
                ],
            )
            for table in ("refused", "in_flight"):
                db.executemany(
                    f"DELETE FROM {table} WHERE place = ? AND fingerprint = ?",
                    [(place, u.fingerprint) for u in items],
                )

    def record_refused(
        self, fingerprint: str, kind: str, date_ms: int, reason: str, place: str
    ) -> None:
        """The destination at ``place`` refused this message for good."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO refused "
                "(place, fingerprint, kind, date_ms, reason, refused_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (place, fingerprint, kind, date_ms, reason[:500], int(time.time())),
            )
            db.execute(
                "DELETE FROM in_flight WHERE place = ? AND fingerprint = ?", (place, fingerprint)
            )

    def refused(self, fingerprints: Iterable[str], place: str) -> set[str]:
        """Which of these the destination at ``place`` refused for good in an earlier run."""
        return self._present("refused", fingerprints, place)

    def record_in_flight(self, items: Sequence[InFlight], place: str) -> None:
        """Before sending: these may reach ``place`` without an answer reaching us."""
        now = int(time.time())
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO in_flight "
                "(place, fingerprint, kind, date_ms, message_id, sent_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(place, i.fingerprint, i.kind, i.date_ms, i.message_id, now) for i in items],
            )

    def in_flight(self, fingerprints: Iterable[str], place: str) -> dict[str, str]:
        """Of these, the ones an earlier run sent to ``place`` without learning the outcome:
        {fingerprint: message_id}."""
        rows = self._select_in(
            "fingerprint, message_id", "in_flight", "fingerprint", fingerprints, place
        )
        return {str(row[0]): str(row[1]) for row in rows}

    def newest_date_ms(self, kind: str, place: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(date_ms) FROM messages WHERE place = ? AND kind = ?", (place, kind)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def count(self, kind: str, place: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE place = ? AND kind = ?", (place, kind)
        ).fetchone()
        return int(row[0])

    def known_message_ids(self, message_ids: Iterable[str], place: str) -> set[str]:
        """Which of these Message-IDs a message recorded at ``place`` was stored with.

        Adoption and verify match an email by it as well as by fingerprint: an MMS
        email carries no SMIL part, so its decoded fingerprint is not the phone's."""
        wanted = [mid for mid in message_ids if mid]
        rows = self._select_in("message_id", "messages", "message_id", wanted, place)
        return {str(row[0]) for row in rows}

    def uploaded_rows(self, place: str, chunk: int = _CHUNK) -> Iterator[list[Uploaded]]:
        """Everything recorded at ``place``, in fingerprint order, ``chunk`` rows at a
        time: verify walks a whole place without holding it (each chunk is its own
        query, so the store can be written between chunks)."""
        after = ""
        while True:
            rows = self._db.execute(
                "SELECT fingerprint, kind, date_ms, gmail_id, message_id FROM messages "
                "WHERE place = ? AND fingerprint > ? ORDER BY fingerprint LIMIT ?",
                (place, after, chunk),
            ).fetchall()
            if not rows:
                return
            yield [Uploaded(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]
            after = str(rows[-1][0])

    def forget(self, fingerprints: Sequence[str], place: str) -> None:
        """These are no longer at ``place`` (verify found them missing): not backed up
        there any more, so the next upload into it sends them again."""
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM messages WHERE place = ? AND fingerprint = ?",
                [(place, fp) for fp in fingerprints],
            )

    def holds_records(self, place: str) -> bool:
        """Has anything ever been recorded at ``place`` (backed up, refused, in flight)?"""
        for table in ("messages", "refused", "in_flight"):
            row = self._db.execute(
                f"SELECT 1 FROM {table} WHERE place = ? LIMIT 1", (place,)
            ).fetchone()
            if row is not None:
                return True
        return False

    def places(self) -> dict[str, int]:
        """Every place anything was recorded for, with how many messages it holds."""
        rows = self._db.execute(
            "SELECT place, COUNT(*) FROM messages WHERE place != '' GROUP BY place ORDER BY place"
        )
        return {str(place): int(n) for place, n in rows}

    def spool(self) -> Spool:
        """An empty spool for one scan (what an earlier scan left is dropped)."""
        return Spool(self._db, self.path)

    # --- older versions' rows -------------------------------------------------------

    def has_legacy(self) -> bool:
        """Are there rows from before places existed, not yet given to a place?"""
        for table in ("messages", "refused", "place_meta", "runs"):
            row = self._db.execute(f"SELECT 1 FROM {table} WHERE place = '' LIMIT 1").fetchone()
            if row is not None:
                return True
        return False

    def claim_legacy(self, places: Mapping[str, str]) -> None:
        """Give rows of an older smsbak (place '') to the places they were made for.

        ``places`` maps each kind (``sms``, ``mms``, ``call``) to its place: the Gmail
        account in token.json and the configured labels, as every older smsbak
        backed up to exactly there. Kinds not in ``places`` stay unclaimed.
        """
        with self._transaction() as db:
            for kind, place in places.items():
                for table in ("messages", "refused"):
                    db.execute(
                        f"UPDATE OR IGNORE {table} SET place = ? WHERE place = '' AND kind = ?",
                        (place, kind),
                    )
                prefix = f"{kind}_"
                db.execute(
                    "UPDATE OR IGNORE place_meta SET place = ? "
                    "WHERE place = '' AND substr(key, 1, ?) = ?",
                    (place, len(prefix), prefix),
                )
            for command, kind in _LEGACY_RUNS.items():
                if kind in places:
                    db.execute(
                        "UPDATE runs SET place = ? WHERE place = '' AND command = ?",
                        (places[kind], command),
                    )

    # --- runs -----------------------------------------------------------------------

    def start_run(self, command: str, place: str = LEGACY) -> int:
        """A run begins; ``place`` is where it backs up to or restores from."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, pid, started_at, result, place) "
                "VALUES (?, ?, ?, 'running', ?)",
                (command, os.getpid(), int(time.time()), place),
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
        self,
        command: str | None = None,
        result: str | tuple[str, ...] | None = None,
        place: str | None = None,
    ) -> Run | None:
        """The newest run of ``command`` with ``result``, at ``place`` (None: anywhere)."""
        clauses: list[str] = []
        params: list[str] = []
        if place is not None:
            clauses.append("place = ?")
            params.append(place)
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
            f"failed, error, place FROM runs {where} ORDER BY id DESC LIMIT 1",
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
            place=row[11],
        )

    # --- small facts ----------------------------------------------------------------

    def get_meta(self, key: str, place: str | None = None) -> str | None:
        """A fact about the phone (``place`` None), or about one place (its watermarks)."""
        if place is None:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        else:
            row = self._db.execute(
                "SELECT value FROM place_meta WHERE place = ? AND key = ?", (place, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, place: str | None = None) -> None:
        with self._transaction() as db:
            if place is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            else:
                db.execute(
                    "INSERT INTO place_meta (place, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (place, key) DO UPDATE SET value = excluded.value",
                    (place, key, value),
                )


# --- the spool: one scan's pending work, off the Python heap -------------------------

_SPOOL_BATCH = 500
"""Rows fetched from the spool per query: memory holds one such batch at a time."""


@dataclass(frozen=True)
class SpoolRow:
    """One record a scan (or a restore's read) found.

    ``identity`` breaks ties between records of one date in the plan's order;
    ``payload`` is the record as its engine serialized it (text, or an email's bytes);
    ``ref`` is where it came from, when that matters (a restore: the remote id).
    """

    fingerprint: str
    date_ms: int
    identity: str
    payload: str | bytes
    ref: str = ""

    @property
    def text(self) -> str:
        assert isinstance(self.payload, str), "this spool keeps bytes"
        return self.payload

    @property
    def data(self) -> bytes:
        assert isinstance(self.payload, bytes), "this spool keeps text"
        return self.payload


class Spool:
    """What one scan found, held in TEMP tables of the state database's connection.

    A first backup of a big phone finds hundreds of thousands of records; held as
    Python objects they cost about 1 kB each, and Android kills a big background
    process first. Here they live in SQLite's temporary database instead: a file
    SQLite creates owner-only and unlinks at once (or memory, if SQLite was built
    to keep temporaries there), with a small page cache, so the process stays flat
    in the size of the phone.

    TEMP tables belong to this connection alone and vanish with it: a killed run
    leaves nothing behind, the state file itself is never written by the spool, and
    a dry run (which writes no state) can spool too. Each scan starts from an empty
    spool (:meth:`StateStore.spool` drops what an earlier scan of this process left).

    The plan (:meth:`plan`) is the order uploads go in: oldest first, rows not yet
    confirmed or refused at the place. :meth:`settle` marks rows whose outcome is
    known in this run, so :meth:`oldest_unsettled` gives the watermark its bound.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._planned = 0
        self._kept = 0  # counted here: COUNT(*) after every page would rescan the table
        self._run(
            "DROP TABLE IF EXISTS temp.spool",
            "DROP TABLE IF EXISTS temp.spool_plan",
            "CREATE TEMP TABLE spool ("
            " fingerprint TEXT PRIMARY KEY, date_ms INTEGER NOT NULL,"
            " identity TEXT NOT NULL, payload NOT NULL, ref TEXT NOT NULL,"
            " settled INTEGER NOT NULL DEFAULT 0, marked INTEGER NOT NULL DEFAULT 0)",
            "CREATE TEMP TABLE spool_plan (seq INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL)",
        )

    def _run(self, *statements: str) -> None:
        try:
            for statement in statements:
                self._db.execute(statement)
        except sqlite3.Error as error:
            raise self._error(error) from error

    def _error(self, error: sqlite3.Error) -> StateError:
        return StateError(
            f"could not keep the scan's pending work next to {self._path}: {error}",
            "check free space in the temporary directory (TMPDIR); nothing unconfirmed "
            "was recorded, so running again is safe",
        )

    def add(self, rows: Sequence[SpoolRow]) -> list[SpoolRow]:
        """Keep ``rows``; return those whose fingerprint was already kept (the first
        one found stays, as the scan's dedupe always did)."""
        if not rows:
            return []
        try:
            present = self._present([r.fingerprint for r in rows])
            again: list[SpoolRow] = []
            fresh: list[SpoolRow] = []
            for row in rows:
                if row.fingerprint in present:
                    again.append(row)
                else:
                    present.add(row.fingerprint)
                    fresh.append(row)
            self._db.executemany(
                "INSERT INTO temp.spool (fingerprint, date_ms, identity, payload, ref) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.fingerprint, r.date_ms, r.identity, r.payload, r.ref) for r in fresh],
            )
            self._kept += len(fresh)
        except sqlite3.Error as error:
            raise self._error(error) from error
        return again

    def put(self, row: SpoolRow) -> None:
        """Keep ``row`` unless its fingerprint is kept already."""
        self.add([row])

    def _present(self, fingerprints: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT fingerprint FROM temp.spool WHERE fingerprint IN ({marks})", chunk
            )
            found.update(str(row[0]) for row in rows)
        return found

    def get(self, fingerprint: str) -> SpoolRow | None:
        row = self._db.execute(
            "SELECT fingerprint, date_ms, identity, payload, ref FROM temp.spool "
            "WHERE fingerprint = ?",
            (fingerprint,),
        ).fetchone()
        return (
            None
            if row is None
            else SpoolRow(str(row[0]), int(row[1]), str(row[2]), row[3], str(row[4]))
        )

    def remove(self, fingerprint: str) -> None:
        self._kept -= self._run_with("DELETE FROM temp.spool WHERE fingerprint = ?", (fingerprint,))

    def _run_with(self, statement: str, params: Sequence[object]) -> int:
        """Run one statement; returns how many rows it changed."""
        try:
            return self._db.execute(statement, params).rowcount
        except sqlite3.Error as error:
            raise self._error(error) from error

    def __len__(self) -> int:
        return self._kept

    def rows(self, *, payload: bool = True) -> Iterator[SpoolRow]:
        """Every kept row, in no particular order (without ``payload``: an empty one)."""
        last = ""
        while True:
            batch = self._db.execute(
                "SELECT fingerprint, date_ms, identity, ref FROM temp.spool "
                "WHERE fingerprint > ? ORDER BY fingerprint LIMIT ?",
                (last, _SPOOL_BATCH),
            ).fetchall()
            if not batch:
                return
            for fingerprint, date_ms, identity, ref in batch:
                yield self._row(fingerprint, date_ms, identity, ref, payload=payload)
            last = str(batch[-1][0])

    def _row(
        self, fingerprint: str, date_ms: int, identity: str, ref: str, *, payload: bool
    ) -> SpoolRow:
        """A row with its payload read now, by itself: a batch of rows read at once could
        be a batch of MMS with their pictures (a restore keeps whole emails)."""
        data: str | bytes = ""
        if payload:
            found = self._db.execute(
                "SELECT payload FROM temp.spool WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            data = found[0] if found is not None else ""
        return SpoolRow(str(fingerprint), int(date_ms), str(identity), data, str(ref))

    def count_at(self, table: str, place: str) -> int:
        """How many kept rows ``table`` ("messages" or "refused") holds at ``place``."""
        assert table in ("messages", "refused")
        row = self._db.execute(
            f"SELECT COUNT(*) FROM temp.spool s WHERE EXISTS (SELECT 1 FROM main.{table} t "
            "WHERE t.place = ? AND t.fingerprint = s.fingerprint)",
            (place,),
        ).fetchone()
        return int(row[0])

    def plan(self, place: str, *, skip_refused: bool) -> int:
        """Order what is to upload: kept rows not confirmed at ``place`` (nor refused
        there, with ``skip_refused``) and not marked (known there by another key: an
        MMS recorded by its email's Message-ID), oldest first. Returns how many."""
        refused = (
            "AND NOT EXISTS (SELECT 1 FROM main.refused r "
            "WHERE r.place = ?1 AND r.fingerprint = s.fingerprint) "
            if skip_refused
            else ""
        )
        self._run("DELETE FROM temp.spool_plan")
        self._run_with(
            "INSERT INTO temp.spool_plan (fingerprint) SELECT s.fingerprint FROM temp.spool s "
            "WHERE NOT EXISTS (SELECT 1 FROM main.messages m "
            "WHERE m.place = ?1 AND m.fingerprint = s.fingerprint) "
            f"AND s.marked = 0 {refused}ORDER BY s.date_ms, s.identity, s.fingerprint",
            (place,),
        )
        self._planned = int(self._db.execute("SELECT COUNT(*) FROM temp.spool_plan").fetchone()[0])
        return self._planned

    @property
    def planned_count(self) -> int:
        """How many rows the last plan holds."""
        return self._planned

    def planned(self, *, payload: bool = True) -> Iterator[SpoolRow]:
        """The plan, oldest first (safe to settle rows meanwhile); memory holds a batch of
        rows without their payloads, and one payload."""
        seq = 0
        while True:
            batch = self._db.execute(
                "SELECT p.seq, s.fingerprint, s.date_ms, s.identity, s.ref "
                "FROM temp.spool_plan p JOIN temp.spool s ON s.fingerprint = p.fingerprint "
                "WHERE p.seq > ? ORDER BY p.seq LIMIT ?",
                (seq, _SPOOL_BATCH),
            ).fetchall()
            if not batch:
                return
            for _, fingerprint, date_ms, identity, ref in batch:
                yield self._row(fingerprint, date_ms, identity, ref, payload=payload)
            seq = int(batch[-1][0])

    def planned_at(self, start: int, stop: int) -> list[SpoolRow]:
        """The plan's rows ``start`` to ``stop`` (0-based, end excluded)."""
        rows = self._db.execute(
            "SELECT s.fingerprint, s.date_ms, s.identity, s.payload, s.ref "
            "FROM temp.spool_plan p JOIN temp.spool s ON s.fingerprint = p.fingerprint "
            "WHERE p.seq > ? AND p.seq <= ? ORDER BY p.seq",
            (start, stop),
        ).fetchall()
        return [SpoolRow(str(r[0]), int(r[1]), str(r[2]), r[3], str(r[4])) for r in rows]

    def mark(self, fingerprints: Iterable[str]) -> int:
        """Mark the kept rows among ``fingerprints`` (a restore: already on the target);
        returns how many kept rows are marked now."""
        wanted = list(fingerprints)
        try:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                self._db.execute(
                    f"UPDATE temp.spool SET marked = 1 WHERE fingerprint IN ({marks})", chunk
                )
        except sqlite3.Error as error:
            raise self._error(error) from error
        row = self._db.execute("SELECT COUNT(*) FROM temp.spool WHERE marked = 1").fetchone()
        return int(row[0])

    def plan_unmarked(self) -> int:
        """Order the unmarked rows oldest first (ties by identity, then fingerprint)."""
        self._run("DELETE FROM temp.spool_plan")
        self._run(
            "INSERT INTO temp.spool_plan (fingerprint) SELECT fingerprint FROM temp.spool "
            "WHERE marked = 0 ORDER BY date_ms, identity, fingerprint"
        )
        self._planned = int(self._db.execute("SELECT COUNT(*) FROM temp.spool_plan").fetchone()[0])
        return self._planned

    def keep_newest(self, count: int) -> int:
        """Drop all but the ``count`` newest rows; returns how many were dropped."""
        dropped = self._run_with(
            "DELETE FROM temp.spool WHERE fingerprint NOT IN (SELECT fingerprint FROM "
            "temp.spool ORDER BY date_ms DESC, fingerprint LIMIT ?)",
            (count,),
        )
        self._kept -= dropped
        return dropped

    def settle(self, fingerprints: Sequence[str]) -> None:
        """Their outcome is known in this run (confirmed or refused)."""
        try:
            self._db.executemany(
                "UPDATE temp.spool SET settled = 1 WHERE fingerprint = ?",
                [(fp,) for fp in fingerprints],
            )
        except sqlite3.Error as error:
            raise self._error(error) from error

    def oldest_unsettled(self) -> int | None:
        """The date of the oldest planned row whose outcome this run did not learn."""
        row = self._db.execute(
            "SELECT MIN(s.date_ms) FROM temp.spool_plan p "
            "JOIN temp.spool s ON s.fingerprint = p.fingerprint WHERE s.settled = 0"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def close(self) -> None:
        """Free the temporary space now rather than when the connection closes."""
        self._run("DROP TABLE IF EXISTS temp.spool_plan", "DROP TABLE IF EXISTS temp.spool")
