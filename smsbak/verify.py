"""Verify: does the destination still hold what the state says is backed up there?

A label deleted by mistake, messages removed by a mail client or a cleanup rule: the
state would go on saying "backed up" and no backup would ever send them again.
``verify`` reads the folder (as adoption does: streamed, at the destination's read
speed) and compares it with the state at that place:

- recorded there but no longer there: *missing*, listed by kind, date and a short id
  (never a text or a number). With ``--repair`` they are forgotten at that place and a
  full backup reads the phone and uploads them through the one exactly-once path; what
  the phone no longer has cannot be repaired and is said so.
- there but unknown to the state (SMS Backup+'s, another install's): recorded, as
  adoption would.

Memory stays flat in the folder's size: what the folder holds goes into a temporary
on-disk SQLite table (fingerprints and Message-IDs), and the state is walked in
fingerprint order a chunk at a time against it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from smsbak.adopt import FolderScan, Held, mark_adopted, record_held, scan_folder, unknown_of
from smsbak.backup import KIND_CALL, KIND_MMS, KIND_SMS, Progress
from smsbak.errors import ExitCode
from smsbak.ports import Destination
from smsbak.store import StateStore, Uploaded

LIST_LIMIT = 200
"""Missing messages a report lists one by one; the rest are counted."""
_CHUNK = 500


@dataclass(frozen=True)
class Missing:
    """A message the state records at a place that the folder no longer holds."""

    kind: str
    date_ms: int
    short_id: str
    """The first 12 hex digits of its fingerprint: enough to tell, nothing to read."""


@dataclass
class VerifyReport(FolderScan):
    label: str = ""
    place: str = ""
    where: str = ""
    """The destination's description, for people."""
    folder_absent: bool = False
    recorded: int = 0
    """Messages the state recorded at the place when verify began."""
    present: int = 0
    """Of those, found in the folder."""
    recorded_now: Counter[str] = field(default_factory=Counter)
    """Found in the folder, unknown to the state: recorded now, by kind."""
    missing: Counter[str] = field(default_factory=Counter)
    """Recorded, not in the folder, by kind."""
    listed_missing: list[Missing] = field(default_factory=list)
    """The first LIST_LIMIT of them, oldest first."""
    repair_ran: bool = False
    repaired: int = 0
    unrepaired: Counter[str] = field(default_factory=Counter)
    """Missing and not uploaded again (the phone no longer has them), by kind."""

    @property
    def missing_total(self) -> int:
        return sum(self.missing.values())

    @property
    def complete(self) -> bool:
        """The whole folder was read: what is called missing is missing."""
        return not self.stopped and not self.not_fetched

    @property
    def whole(self) -> bool:
        """Everything the state records at the place is there (after a repair, if any)."""
        left = self.missing_total - self.repaired if self.repair_ran else self.missing_total
        return self.complete and left == 0


class Ledger:
    """What a folder holds and what it lacks, on disk for the length of one verify.

    SQLite's temporary database (an empty file name): a file SQLite unlinks as soon
    as it has opened it, holding only fingerprints and Message-IDs (hashes, never a
    text or number); past its small page cache it lives on disk, so memory stays flat.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE missing (fingerprint TEXT PRIMARY KEY, kind TEXT, date_ms INTEGER, "
            "message_id TEXT)"
        )

    def close(self) -> None:
        self._db.close()

    def add_seen(self, held: Sequence[Held]) -> None:
        keys = [(h.fingerprint,) for h in held] + [(h.message_id,) for h in held if h.message_id]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen (key) VALUES (?)", keys)
        self._db.execute("COMMIT")

    def seen_of(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", chunk)
            found.update(str(row[0]) for row in rows)
        return found

    def add_missing(self, rows: Sequence[Uploaded]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR IGNORE INTO missing VALUES (?, ?, ?, ?)",
            [(r.fingerprint, r.kind, r.date_ms, r.message_id) for r in rows],
        )
        self._db.execute("COMMIT")

    def missing(self) -> Iterator[list[tuple[str, str, int, str]]]:
        """(fingerprint, kind, date_ms, message_id) of everything missing, a chunk at a time."""
        after = ""
        while True:
            rows = self._db.execute(
                "SELECT fingerprint, kind, date_ms, message_id FROM missing "
                "WHERE fingerprint > ? ORDER BY fingerprint LIMIT ?",
                (after, _CHUNK),
            ).fetchall()
            if not rows:
                return
            yield [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]
            after = str(rows[-1][0])

    def oldest_missing(self, limit: int) -> list[Missing]:
        rows = self._db.execute(
            "SELECT kind, date_ms, fingerprint FROM missing ORDER BY date_ms LIMIT ?", (limit,)
        )
        return [Missing(str(r[0]), int(r[1]), str(r[2])[:12]) for r in rows]


def verify_place(
    destination: Destination,
    label: str,
    store: StateStore,
    place: str,
    ledger: Ledger,
    *,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> VerifyReport:
    """Compare the state at ``place`` with folder ``label`` of a readable destination.

    Emails there that the state does not know are recorded as they are read. Missing
    ones are collected in ``ledger`` (for a repair) and counted; nothing is forgotten
    here. A folder that could not be read whole (a stop, emails not returned) is
    reported as incomplete and nothing is called missing on its account.
    """
    report = VerifyReport(label=label, place=place, where=destination.description)
    report.recorded = sum(store.count(kind, place) for kind in (KIND_SMS, KIND_MMS, KIND_CALL))
    folder = destination.find_folder(label)
    if folder is None:
        report.folder_absent = True
    else:
        total = destination.count(folder) if destination.capabilities.counts_folder else None

        def batch(held: Sequence[Held]) -> None:
            ledger.add_seen(held)
            new, _known = unknown_of(store, place, held)
            if new:
                record_held(store, place, new)
                report.recorded_now.update(h.kind for h in new)

        scan_folder(
            destination,
            folder,
            report,
            batch,
            progress=lambda done: progress(Progress("verify", done, total)),
            should_stop=should_stop,
        )
    if not report.complete:
        return report
    for rows in store.uploaded_rows(place):
        keys = [r.fingerprint for r in rows] + [r.message_id for r in rows if r.message_id]
        seen = ledger.seen_of(keys)
        gone = [r for r in rows if r.fingerprint not in seen and r.message_id not in seen]
        report.present += len(rows) - len(gone)
        if gone:
            ledger.add_missing(gone)
            report.missing.update(r.kind for r in gone)
    report.present -= sum(report.recorded_now.values())  # those were not recorded before
    report.listed_missing = ledger.oldest_missing(LIST_LIMIT)
    # The folder was read whole and everything in it is recorded: a later first
    # backup has nothing left to adopt there.
    mark_adopted(store, place, "verify", sum(report.recorded_now.values()))
    return report


def forget_missing(store: StateStore, place: str, ledger: Ledger) -> int:
    """Before a repair: the missing ones are no longer backed up at ``place``, so the
    backup that follows uploads them (through the exactly-once path)."""
    forgotten = 0
    for rows in ledger.missing():
        store.forget([fp for fp, _kind, _date, _mid in rows], place)
        forgotten += len(rows)
    return forgotten


def count_repaired(store: StateStore, place: str, ledger: Ledger, report: VerifyReport) -> None:
    """After the repair's backup: which missing ones are recorded at ``place`` again."""
    report.repair_ran = True
    report.repaired = 0
    report.unrepaired.clear()
    for rows in ledger.missing():
        known = store.known([fp for fp, _k, _d, _m in rows], place)
        known_ids = store.known_message_ids([mid for _f, _k, _d, mid in rows], place)
        for fingerprint, kind, _date, message_id in rows:
            if fingerprint in known or (message_id and message_id in known_ids):
                report.repaired += 1
            else:
                report.unrepaired[kind] += 1


def verify_exit_code(reports: Sequence[VerifyReport]) -> int:
    """0 when every place is whole; 8 (checks failed) when something is missing and
    was not repaired, or a folder could not be read whole."""
    return ExitCode.OK if all(r.whole for r in reports) else ExitCode.CHECKS_FAILED
