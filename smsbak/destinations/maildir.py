"""A local Maildir as a destination: the offline copy, readable by mutt, Dovecot and mbsync.

Layout: **Maildir++**, Dovecot's default. ``PATH`` itself is a Maildir (the INBOX, left
empty) and each label is a folder beside it: ``PATH/.SMS/``, ``PATH/.Call log/``, each
with ``cur``, ``new``, ``tmp`` and the empty ``maildirfolder`` marker. A label outside
ASCII is stored under its IMAP modified UTF-7 name, as Dovecot 2.3 writes it on disk
(``Журнал звонков`` -> ``.&BBYEQwRABD0EMAQ7- &BDcEMgQ+BD0EOgQ+BDI-``), so Dovecot
shows it by its real name with no configuration at all. ``/`` or ``.`` in a label nest
folders (Maildir++'s separator is ``.``), so no label can name a path outside ``PATH``.

Each message is delivered as the Maildir specification asks: written to ``tmp/`` under a
unique name (``TIME.M<usec>P<pid>R<random>.HOST``), fsynced, its mtime set to the
message's date (Dovecot shows it as the received date), then linked into ``cur/`` with
the info ``:2,S`` (read) or ``:2,`` (unread), and ``cur/`` fsynced. A crash leaves at
most a file in ``tmp/``, which no reader looks at and which is removed after 36 hours,
as the specification says.

No second copy of a Message-ID: each folder keeps an index, ``smsbak-index``, a small
SQLite file of file name -> place and Message-ID (indexed by Message-ID, owner-only).
A run lists the folder's file names (one streamed ``scandir`` of ``cur`` and ``new``,
no file opened), drops the rows of files gone, follows renames, and reads the headers
only of files the index does not know: written by another tool (mbsync, Dovecot, mutt),
or by a run killed between the delivery and the index's next commit. So a no-op costs
a directory listing, a message killed at the worst moment is still found by its
Message-ID, and a lost, stale or damaged index (or an older smsbak's text one) is
rebuilt from the headers. The index is on disk, not in memory, because an import of
years of messages puts hundreds of thousands of files into one folder: memory is
SQLite's bounded page cache, the same for 2,000 or 2,000,000 files. A name component
derived from the Message-ID was the other choice; it was not taken because files that
mbsync, Dovecot or an import put there would not carry it, and Dovecot and mbsync
rename files.

Bytes are stored exactly as given (smsbak's emails are 7-bit with CRLF line ends, as
they are on the wire to Gmail and IMAP); Dovecot, mutt and mbsync read CRLF files.
"""

from __future__ import annotations

import base64
import errno
import logging
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from smsbak.errors import DestinationError, SmsbakError, UsageError
from smsbak.ports import Confirmed, DestinationCapabilities, Outgoing, Rejected

log = logging.getLogger(__name__)

INBOX = "INBOX"
INDEX_NAME = "smsbak-index"
"""The per-folder SQLite index of file name -> place, Message-ID (a file, so Maildir++
readers, which take only dot-directories for folders, ignore it and its journal)."""
STALE_TMP_SECONDS = 36 * 3600
"""The Maildir specification: a file in tmp/ untouched for 36 hours is garbage."""
HEADER_READ_LIMIT = 256 * 1024
"""A foreign file's header block is read up to this many bytes, never the whole file."""
MESSAGE_SIZE_LIMIT = 64 * 1024 * 1024
"""A file larger than this is no email smsbak or SMS Backup+ wrote (Gmail takes 35 MB at
most): fetching refuses it rather than reading it into memory."""
FETCH_BATCH_BYTES = 32 * 1024 * 1024
FETCH_BATCH_COUNT = 50
_SUBDIRS = ("cur", "new", "tmp")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_BYTES = 255
_CAPABILITIES = DestinationCapabilities(readable=True, merges_message_ids=True, counts_folder=True)


class MaildirError(DestinationError):
    """The Maildir could not be written or read this run (disk full, I/O error)."""


# --- folder names ----------------------------------------------------------------------


def modified_utf7(text: str) -> str:
    """RFC 3501 5.1.3: printable ASCII stays (``&`` becomes ``&-``), every other run
    becomes ``&`` + base64 of its UTF-16BE with ``,`` for ``/`` + ``-``."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in text:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def folder_dir_name(label: str) -> str:
    """The Maildir++ directory of a label (``INBOX`` for the root itself).

    Raises UsageError for a label that cannot be a folder; nothing it returns can
    leave ``PATH``: the result is one path component that starts with a dot and is
    neither ``.`` nor ``..``.
    """
    if label.upper() == INBOX:
        return INBOX
    parts = re.split(r"[./]", label)
    if not label or any(not part for part in parts) or _CONTROL.search(label):
        raise UsageError(
            f"The label {label!r} cannot be a Maildir folder: it is empty, has an empty part "
            "between '/' or '.', or holds control characters.",
            hint="Choose a plain name such as SMS or 'Call log' (label / call_label in "
            "config.toml); '/' or '.' nest folders, as in Backups/SMS.",
        )
    name = "." + ".".join(modified_utf7(part) for part in parts)
    if len(name.encode("utf-8")) > _NAME_BYTES:
        raise UsageError(
            f"The label {label!r} is too long for a Maildir folder name.",
            hint="Choose a shorter label (label / call_label in config.toml).",
        )
    return name


def _valid_handle(handle: str) -> bool:
    if handle == INBOX:
        return True
    return (
        handle.startswith(".")
        and "/" not in handle
        and ".." not in handle
        and len(handle) > 1
        and not _CONTROL.search(handle)
    )


# --- file names ------------------------------------------------------------------------


def _host() -> str:
    """The host part of a unique name, with ``/`` and ``:`` escaped as the spec says."""
    host = socket.gethostname() or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072")


def unique_name(now: float | None = None) -> str:
    """``TIME.M<usec>P<pid>R<random>.HOST`` (cr.yp.to/proto/maildir.html, Dovecot's form)."""
    moment = time.time() if now is None else now
    seconds = int(moment)
    usec = int((moment - seconds) * 1_000_000)
    return f"{seconds}.M{usec}P{os.getpid()}R{secrets.token_hex(8)}.{_host()}"


def base_of(file_name: str) -> str:
    """The unique part of a Maildir file name: before the ``:2,FLAGS`` info."""
    return file_name.split(":", 1)[0]


# --- headers -----------------------------------------------------------------------------


def normalize_message_id(value: str) -> str:
    """One spelling of a Message-ID: unfolded, no whitespace (none is legitimate in it)."""
    return "".join(value.split())


def header_message_id(head: bytes) -> str:
    """The Message-ID of an email's header block, or "" when it has none."""
    end = len(head)
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = head.find(separator)
        if at != -1:
            end = min(end, at)
    block = head[:end] + b"\r\n\r\n"
    value = BytesHeaderParser(policy=compat32).parsebytes(block).get("Message-ID")
    return normalize_message_id(str(value)) if value is not None else ""


def _read_head(path: Path) -> bytes | None:
    """The start of a file up to its header block's end, without following a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while size < HEADER_READ_LIMIT:
            chunk = os.read(fd, 16 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            joined = b"".join(chunks)
            if b"\r\n\r\n" in joined or b"\n\n" in joined:
                return joined
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


# --- errors ------------------------------------------------------------------------------


def _write_error(error: OSError, path: Path, root: Path) -> SmsbakError:
    """A person's explanation of a failed write; what was confirmed stays confirmed."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return MaildirError(
            f"The Maildir {root} is full: {error.strerror} while writing {path.name}.",
            hint="Free some space on that storage (or choose another maildir: path), then run "
            "smsbak backup again: what was confirmed stays backed up and nothing half-written "
            "was left behind.",
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UsageError(
            f"The Maildir {root} cannot be written: {error.strerror} ({path}).",
            hint='Choose a folder you own, such as ~/Maildir (destination = "maildir:PATH" '
            "in config.toml or SMSBAK_DESTINATION), or make it writable: chmod u+rwx PATH.",
        )
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return UsageError(
            f"The Maildir {root} cannot be used: {path} is in the way ({error.strerror}).",
            hint='Point destination = "maildir:PATH" at a folder (new or an existing '
            "Maildir), not at a file.",
        )
    return MaildirError(
        f"Writing to the Maildir {root} failed: {error.strerror or error} ({path}).",
        hint="Check the storage (df, dmesg), then run smsbak backup again.",
    )


def _fsync_dir(path: Path) -> None:
    """Make a rename durable. Filesystems that cannot fsync a directory are let be."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _mkdir(path: Path) -> None:
    """Create owner-only (0700); an existing folder keeps the permissions it has."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path)) from None


# --- one folder --------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    base TEXT PRIMARY KEY,
    relative TEXT NOT NULL,
    message_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_message_id ON files (message_id, base);
"""
_INDEX_CACHE_KIB = 1024
"""SQLite's page cache per folder: what bounds the index's memory, whatever the folder holds."""
_PAGE = 500
"""Rows handled per query or statement batch while listing, so no step holds a folder."""
INDEX_BUSY_SECONDS = 10.0
"""How long to wait for another process's write to the index before using a private one."""
COMMIT_EVERY = 200
"""Deliveries between two commits of the index; a kill loses at most these rows, which the
next run reads back from the files' headers."""


class _Folder:
    """What one Maildir folder holds, kept in its SQLite index rather than in memory.

    The index ``smsbak-index`` maps a file's unique name to its place (``cur/NAME:2,S``)
    and its Message-ID. It is a cache of the folder, never its truth: every lookup is
    preceded by a listing that drops rows of files gone, follows renames (a reader
    changing flags, ``new`` -> ``cur``) and reads the headers of files it does not know.
    So a missing, stale, foreign-format or damaged index costs header reads, never a
    second copy; memory is SQLite's bounded page cache, flat in the folder's size.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._open()
        self._pending = 0

    # --- the index file ---------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        index = self.path / INDEX_NAME
        for attempt in range(2):
            try:
                return self._connect(index)
            except sqlite3.OperationalError:
                break  # locked by another process, read-only, full: leave it as it is
            except sqlite3.DatabaseError:
                # Not a database (an older text cache, a damaged file): it is a cache,
                # so it is rebuilt from the headers.
                if attempt == 0:
                    self._remove_index()
            except OSError:
                break  # a folder smsbak cannot write, or a symlink in the index's place
        return self._private()

    def _private(self) -> sqlite3.Connection:
        """A temporary index of this run only (still on disk, still flat in memory) for
        when the folder's own cannot be used: every header is read, nothing is wrong."""
        log.warning("the Maildir index in %s cannot be used; reading the headers", self.path)
        self._pending = 0
        return self._configure(sqlite3.connect("", isolation_level=None))

    def _remove_index(self) -> None:
        index = self.path / INDEX_NAME
        for leftover in (index, index.with_name(f"{INDEX_NAME}-journal")):
            with suppress(OSError):
                leftover.unlink()

    def _connect(self, index: Path) -> sqlite3.Connection:
        # Created owner-only before SQLite sees it: its journal takes the same mode.
        os.close(os.open(index, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        db = sqlite3.connect(index, isolation_level=None, timeout=INDEX_BUSY_SECONDS)
        try:
            return self._configure(db)
        except BaseException:
            db.close()
            raise

    @staticmethod
    def _configure(db: sqlite3.Connection) -> sqlite3.Connection:
        db.execute(f"PRAGMA cache_size = -{_INDEX_CACHE_KIB}")
        db.execute("PRAGMA temp_store = FILE")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        if db.execute("PRAGMA quick_check(1)").fetchall() != [("ok",)]:
            raise sqlite3.DatabaseError("the index is damaged")
        return db

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self._commit()
            self._db.close()

    def _commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._pending = 0

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    # --- keeping it true --------------------------------------------------------------

    def refresh(self) -> None:
        """List ``cur`` and ``new`` (streamed); read headers only of files the index lacks.

        An index found damaged now is dropped and rebuilt from the headers, once; one
        that cannot be written (locked, read-only, full) is left alone and a private
        one used for the rest of the run."""
        try:
            self._sync()
        except sqlite3.OperationalError:
            self._go_private()
        except sqlite3.DatabaseError:
            self.rebuild()
            with self._errors():
                self._sync()

    def _go_private(self) -> None:
        with suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        with suppress(sqlite3.Error):
            self._db.close()
        with self._errors():
            self._db = self._private()
            self._sync()

    def rebuild(self) -> None:
        """Forget the index file (damaged): the next listing reads every header."""
        with suppress(sqlite3.Error):
            self._db.close()
        self._remove_index()
        self._db = self._open()
        self._pending = 0

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors (disk full, I/O, locked) as a person's explanation."""
        try:
            yield
        except sqlite3.Error as error:
            raise MaildirError(
                f"The Maildir index {self.path / INDEX_NAME} cannot be used: {error}.",
                hint="Free some space on that storage if it is full, or delete that file "
                "(smsbak rebuilds it from the messages' headers), then run the command "
                "again: what was confirmed stays backed up.",
            ) from error

    def _sync(self) -> None:
        db = self._db
        self._commit()
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS listing"
            " (base TEXT PRIMARY KEY, relative TEXT NOT NULL) WITHOUT ROWID"
        )
        self._begin()
        try:
            db.execute("DELETE FROM temp.listing")
            db.executemany("INSERT OR IGNORE INTO temp.listing VALUES (?, ?)", self._listing())
            db.execute("DELETE FROM files WHERE base NOT IN (SELECT base FROM temp.listing)")
            db.execute(
                "UPDATE files SET relative = listing.relative FROM temp.listing AS listing"
                " WHERE listing.base = files.base AND listing.relative != files.relative"
            )
            after: str | None = None
            while True:
                unknown = db.execute(
                    "SELECT base, relative FROM temp.listing AS listing"
                    " WHERE (?1 IS NULL OR base > ?1)"
                    " AND NOT EXISTS (SELECT 1 FROM files WHERE files.base = listing.base)"
                    " ORDER BY base LIMIT ?2",
                    (after, _PAGE),
                ).fetchall()
                if not unknown:
                    break
                db.executemany(
                    "INSERT INTO files VALUES (?, ?, ?)",
                    [(base, relative, self._header_id(relative)) for base, relative in unknown],
                )
                after = unknown[-1][0]
            db.execute("DELETE FROM temp.listing")
            self._commit()
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _listing(self) -> Iterator[tuple[str, str]]:
        for sub in ("cur", "new"):
            try:
                entries = os.scandir(self.path / sub)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                        continue
                    yield base_of(entry.name), f"{sub}/{entry.name}"

    def _header_id(self, relative: str) -> str:
        head = _read_head(self.path / relative)
        return header_message_id(head) if head is not None else ""

    def add(self, base: str, relative: str, message_id: str) -> None:
        """Record a delivered file; committed in groups (a lost row is re-read later).

        When the index cannot take it, a private one is listed afresh: it finds the
        file just delivered in ``cur``, so a later copy of its Message-ID is still seen."""
        try:
            self._begin()
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (base, relative, message_id)
            )
            self._pending += 1
            if self._pending >= COMMIT_EVERY:
                self._commit()
        except sqlite3.Error:
            self._go_private()

    def flush(self) -> None:
        """Commit what ``add`` recorded (the end of an upload)."""
        with suppress(sqlite3.Error):
            self._commit()

    # --- reading it -------------------------------------------------------------------

    def by_id(self, message_id: str) -> str | None:
        """The file holding a Message-ID (the first in name order), or None."""
        if not message_id:
            return None
        with self._errors():
            row = self._db.execute(
                "SELECT base FROM files WHERE message_id = ? ORDER BY base LIMIT 1", (message_id,)
            ).fetchall()
        return str(row[0][0]) if row else None

    def relative(self, base: str) -> str | None:
        with self._errors():
            row = self._db.execute("SELECT relative FROM files WHERE base = ?", (base,)).fetchall()
        return str(row[0][0]) if row else None

    def count(self) -> int:
        with self._errors():
            return int(self._db.execute("SELECT COUNT(*) FROM files").fetchall()[0][0])

    def bases(self) -> Iterator[str]:
        """Every file's unique name in order, a page at a time (no cursor held open
        between pages, so a refresh in between is safe)."""
        after: str | None = None
        while True:
            with self._errors():
                page = [
                    str(row[0])
                    for row in self._db.execute(
                        "SELECT base FROM files WHERE (?1 IS NULL OR base > ?1)"
                        " ORDER BY base LIMIT ?2",
                        (after, _PAGE),
                    ).fetchall()
                ]
            if not page:
                return
            yield from page
            after = page[-1]


# --- the destination ---------------------------------------------------------------------


class MaildirDestination:
    """``destination = "maildir:PATH"``: one Maildir++ folder per label under ``PATH``."""

    def __init__(self, path: Path, *, stale_tmp_seconds: float = STALE_TMP_SECONDS) -> None:
        # Symlinks resolved: pointing a link elsewhere is another place, with its own state.
        self.root = Path(os.path.expanduser(path)).resolve()
        self.stale_tmp_seconds = stale_tmp_seconds
        self._folders: dict[str, _Folder] = {}

    # --- the port -----------------------------------------------------------------------

    @property
    def identity(self) -> str:
        return f"maildir:{self.root}"

    @property
    def capabilities(self) -> DestinationCapabilities:
        return _CAPABILITIES

    @property
    def description(self) -> str:
        return f"the Maildir {self.root}"

    def ensure_folder(self, name: str) -> str:
        handle = folder_dir_name(name)
        try:
            for parent in reversed(self.root.parents):
                if not parent.exists():
                    _mkdir(parent)
            _mkdir(self.root)
            for sub in _SUBDIRS:
                _mkdir(self.root / sub)
            folder = self._dir(handle)
            if handle != INBOX:
                _mkdir(folder)
                for sub in _SUBDIRS:
                    _mkdir(folder / sub)
                marker = folder / "maildirfolder"
                if not marker.exists():
                    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as error:
            raise _write_error(error, Path(error.filename or self.root), self.root) from error
        self._clean_tmp(folder)
        return handle

    def find_folder(self, name: str) -> str | None:
        handle = folder_dir_name(name)
        folder = self._dir(handle)
        if all((folder / sub).is_dir() for sub in ("cur", "new")):
            return handle
        return None

    def upload(
        self,
        items: Iterable[Outgoing],
        folder: str,
        *,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Deliver one at a time, confirming each as soon as it is durable in ``cur``.

        A Message-ID the folder already holds is confirmed with the copy that is there
        (this destination merges), so a re-sent item never becomes a second file."""
        box = self._loaded(folder)
        try:
            for item in items:
                if should_stop():
                    return
                message_id, problem = _check(item)
                if problem is not None:
                    on_rejected(Rejected(item.key, problem))
                    continue
                existing = box.by_id(message_id)
                if existing is None:
                    existing = self._deliver(box, folder, item, message_id)
                on_confirmed([Confirmed(item.key, f"{folder}/{existing}")])
        finally:
            box.flush()

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        if not message_ids:
            return {}
        box = self._loaded(folder)
        found: dict[str, str] = {}
        for message_id in message_ids:
            base = box.by_id(normalize_message_id(message_id))
            if base is not None:
                found[message_id] = f"{folder}/{base}"
        return found

    def count(self, folder: str) -> int:
        return self._loaded(folder).count()

    def list_ids(self, folder: str, query: str = "") -> Iterator[str]:
        """Every message in ``cur`` and ``new``, oldest name first. A Maildir has no
        search language: ``query`` is not applied (the engine filters what it decodes)."""
        box = self._loaded(folder)
        return (f"{folder}/{base}" for base in box.bases())

    def fetch_raw(
        self,
        ids: Iterable[str],
        *,
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Whole files, in batches of at most 50 messages or 32 MB (memory stays bounded)."""
        batch: list[tuple[str, bytes]] = []
        size = 0
        refreshed: set[str] = set()
        for remote_id in ids:
            if should_stop():
                break
            raw, problem = self._read(remote_id, refreshed)
            if raw is None:
                on_rejected(remote_id, problem)
                continue
            batch.append((remote_id, raw))
            size += len(raw)
            if len(batch) >= FETCH_BATCH_COUNT or size >= FETCH_BATCH_BYTES:
                on_fetched(batch)
                batch, size = [], 0
        if batch:
            on_fetched(batch)

    def close(self) -> None:
        folders = list(self._folders.values())
        self._folders.clear()
        for box in folders:
            box.close()

    # --- inside ---------------------------------------------------------------------------

    def _dir(self, handle: str) -> Path:
        if not _valid_handle(handle):
            raise UsageError(
                f"{handle!r} is not a folder of {self.description}.",
                hint="Folders come from ensure_folder/find_folder (a label such as SMS).",
            )
        return self.root if handle == INBOX else self.root / handle

    def _loaded(self, handle: str) -> _Folder:
        box = self._folders.get(handle)
        if box is None:
            box = self._folders[handle] = _Folder(self._dir(handle))
        box.refresh()
        return box

    def _deliver(self, box: _Folder, handle: str, item: Outgoing, message_id: str) -> str:
        """tmp -> fsync -> mtime -> link into cur -> fsync cur. Returns the base name."""
        base = unique_name()
        tmp = box.path / "tmp" / base
        final_name = f"{base}:2,{'S' if item.seen else ''}"
        final = box.path / "cur" / final_name
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise _write_error(error, tmp, self.root) from error
        try:
            try:
                view = memoryview(item.raw)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if item.date_ms > 0:
                os.utime(tmp, ns=(time.time_ns(), item.date_ms * 1_000_000))
            _link(tmp, final)
        except OSError as error:
            with suppress(OSError):
                tmp.unlink()
            raise _write_error(error, tmp, self.root) from error
        with suppress(OSError):
            tmp.unlink()
        try:
            _fsync_dir(final.parent)
        except OSError as error:
            raise _write_error(error, final.parent, self.root) from error
        box.add(base, f"cur/{final_name}", message_id)
        return base

    def _read(self, remote_id: str, refreshed: set[str]) -> tuple[bytes | None, str]:
        """One message's bytes, or why not. A name not found is looked for once more
        after one fresh listing per folder and fetch (a reader may have renamed it to
        change its flags); a hostile id never leaves the Maildir."""
        handle, slash, base = remote_id.partition("/")
        if not slash or not base or "/" in base or base in (".", "..") or not _valid_handle(handle):
            return None, f"not a message of {self.description}"
        for attempt in range(2):
            box = self._folders.get(handle)
            if box is None or (attempt and handle not in refreshed):
                box = self._loaded(handle)
                refreshed.add(handle)
            relative = box.relative(base)
            if relative is None:
                continue
            try:
                fd = os.open(box.path / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as error:
                return None, f"cannot read it: {error.strerror}"
            with os.fdopen(fd, "rb") as stream:
                try:
                    size = os.fstat(stream.fileno()).st_size
                    if size > MESSAGE_SIZE_LIMIT:
                        return None, f"{size} bytes: larger than any SMS, MMS or call email"
                    return stream.read(MESSAGE_SIZE_LIMIT + 1), ""
                except OSError as error:
                    return None, f"cannot read it: {error.strerror}"
        return None, "no such message (deleted or moved)"

    def _clean_tmp(self, folder: Path) -> None:
        """Remove what a killed writer left in tmp/ once 36 hours untouched (the spec)."""
        cutoff = time.time() - self.stale_tmp_seconds
        try:
            entries = list(os.scandir(folder / "tmp"))
        except OSError:
            return
        for entry in entries:
            with suppress(OSError):
                stat = entry.stat(follow_symlinks=False)
                if stat.st_atime < cutoff and stat.st_mtime < cutoff:
                    os.unlink(entry.path)


def _check(item: Outgoing) -> tuple[str, str | None]:
    """The item's Message-ID, or why this destination refuses it for good."""
    if not item.raw.strip():
        return "", "an empty message"
    in_header = header_message_id(item.raw[:HEADER_READ_LIMIT])
    if not in_header:
        return "", (
            "the email has no Message-ID header, so a second copy of it could not be "
            "told apart from it"
        )
    if item.message_id and normalize_message_id(item.message_id) != in_header:
        return "", f"its Message-ID header {in_header} is not the one it was sent as"
    return in_header, None


def _link(tmp: Path, final: Path) -> None:
    """link(2) never replaces an existing file; where links are not allowed (some
    Android storage), a rename after checking that the name is free."""
    try:
        os.link(tmp, final)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if final.exists():
            raise FileExistsError(
                errno.EEXIST, "a file of that unique name exists", str(final)
            ) from error
        os.rename(tmp, final)
