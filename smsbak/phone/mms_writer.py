"""Writing MMS back into the phone through Shizuku or root, without the default SMS app.

Android's MMS provider is gated by the same WRITE_SMS app-op as the SMS store and
has no default-app check (see /work/shared/reference/mms-provider.md), so the shell
user may write pdu rows, parts, addresses and part files. ``content insert`` prints
nothing, not even when the provider ignores a write, so every step is confirmed by a
query, and an MMS that did not arrive whole is deleted again (by its own row URI:
never a where clause that could match other messages) and reported as not restored.

Steps, each a shell start shared by a chunk of MMS:

1. the thread of each conversation, from the ``threadID`` URI with every address but
   the phone's own numbers (one Java start per distinct conversation);
2. the pdu rows (``sub_id`` -1, no ``_data``, box inbox or sent, never one a
   messaging app would send), found again by their ``m_id``: ``smsbak-`` and the
   record's fingerprint, which also makes a second restore skip them (SMS Import /
   Export compares date, box and ``m_id`` the same way);
3. parts (text in ``text``) and addresses, confirmed by one part query for the
   chunk and one address query per MMS (there is no bulk address URI);
4. attachment bytes: staged in shared storage (the shell cannot read Termux's
   files), copied in with ``content write``, their size read back with ``content
   read``, the staged copies removed at once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from smsbak.errors import PhoneError
from smsbak.model import Box, Mms, MmsPart, Sms
from smsbak.paths import write_private_atomically
from smsbak.phone.privileged import (
    ExactQuery,
    PrivilegedShell,
    content_command,
    escape_bind_value,
    hex_of,
    length_of,
    query_exact,
)
from smsbak.phone.privileged_reader import INSERT_ADDRESS_TOKEN, MmsReader
from smsbak.phone.termux import walk_newest_first
from smsbak.phone.writer import PhoneSmsStore
from smsbak.ports import TargetCapabilities
from smsbak.restore_targets import FileTarget

log = logging.getLogger(__name__)

MMS_URI = "content://mms"
MARKER = "smsbak-"
"""``m_id`` prefix of the MMS smsbak restored; the rest is the record's fingerprint."""
TEXT_TYPES = ("text/plain", "application/smil")
"""Part types the provider keeps in ``text``; every other type gets a file."""
RESTORED_BOXES = (Box.INBOX, Box.SENT)
"""Drafts and outbox rows are what messaging apps send: never written."""
M_SEND_REQ, M_RETRIEVE_CONF = 128, 132
CHARSET_UTF8 = 106
CHUNK = 10
"""MMS per shell start: their inserts and confirming queries share it."""
MAX_SCRIPT_BYTES = 100_000
"""Under Linux's 128 KiB limit for one argument (the script given to rish -c / su -c)."""
STAGE_FOLDER = ".smsbak-mms-staging"
PAGE = 50


class ContentWriteMissing(PhoneError):
    """This Android's ``content`` has no ``write`` (Android 6 and older), or its MMS
    provider refuses the queries that confirm each write."""


def without_smil(mms: Mms) -> Mms:
    """Emails carry no SMIL layout part; compare what the phone holds without it."""
    parts = tuple(p for p in mms.parts if _bare_type(p) != "application/smil")
    return replace(mms, parts=parts)


def _bare_type(part: MmsPart) -> str:
    return part.content_type.split(";", 1)[0].strip().lower()


def in_file(part: MmsPart) -> bool:
    """Does this part's content go into a provider-made file (``content write``)?"""
    return _bare_type(part) not in TEXT_TYPES and (part.data is not None or part.text is None)


def needs_write(mms: Mms) -> bool:
    return any(in_file(part) for part in mms.parts)


def recipients(mms: Mms, own_numbers: set[str]) -> list[str]:
    """The addresses that name the conversation: everyone but the phone's own numbers,
    so the sent and received MMS of a group land in one thread."""
    others: list[str] = []
    for address, _kind in mms.addresses:
        if address and address != INSERT_ADDRESS_TOKEN and address not in others:
            others.append(address)
    without_own = [a for a in others if a not in own_numbers]
    return without_own or others


@dataclass
class _Written:
    """One MMS on its way in: its row id once inserted, and what went wrong."""

    mms: Mms
    marker: str
    thread_id: int = 0
    row_id: int | None = None
    part_ids: list[int] = field(default_factory=list)
    problem: str | None = None


class PhoneMmsWriter:
    """The MMS side of ``--to phone``."""

    def __init__(
        self,
        shell: PrivilegedShell,
        *,
        stage_dir: Path,
        own_numbers: Callable[[Iterable[Mms]], set[str]] = lambda _: set(),
        journal: Path | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self.shell = shell
        self.stage_dir = stage_dir
        self.journal = journal
        self.own_numbers = own_numbers
        self.chunk = chunk
        self.phone_mms: list[Mms] = []
        self.escaping = "modern"
        self._own: set[str] = set()

    # ------------------------------------------------------------ what is there

    def existing_fingerprints(self) -> set[str]:
        """The MMS on the phone as fingerprints: those smsbak wrote by their ``m_id``
        (one query), any other by reading it as a backup does (without SMIL)."""
        (rows,) = query_exact(
            self.shell,
            [ExactQuery(MMS_URI, ("_id", length_of("m_id"), hex_of("m_id")))],
            "reading the phone's MMS",
        )
        in_flight = self._in_flight()
        ours = {
            (row["m_id"] or "")[len(MARKER) :]
            for row in rows
            if (row["m_id"] or "").startswith(MARKER) and row["m_id"] not in in_flight
        }
        self.phone_mms = []
        marked = sum(1 for row in rows if (row["m_id"] or "").startswith(MARKER))
        if marked == len(rows):
            return ours
        reader = MmsReader(self.shell)
        for page in walk_newest_first(reader.page, PAGE):
            self.phone_mms += [m.mms for m in page.messages if m.mms is not None]
        return ours | {without_smil(mms).fingerprint for mms in self.phone_mms}

    def write_supported(self) -> bool:
        """Probe for ``content write`` with an empty copy to a part that cannot exist."""
        result = self.shell.run(
            content_command("write", "--uri", "content://mms/part/0") + " < /dev/null"
        )
        return "Unsupported operation" not in result.stdout

    # ------------------------------------------------------------ writing

    def write(
        self,
        messages: Sequence[Mms],
        *,
        on_written: Callable[[Sequence[Mms]], None],
        on_rejected: Callable[[Mms, str], None],
    ) -> None:
        """Write every MMS whole or not at all; report each chunk once confirmed.

        Raises :class:`ContentWriteMissing` before writing anything when attachments
        need ``content write`` and this Android lacks it, and PhoneError when the
        provider ignores the inserts altogether (the app-op is not granted).
        """
        acceptable = [m for m in messages if self._acceptable(m, on_rejected)]
        if not acceptable:
            return
        if any(needs_write(m) for m in acceptable) and not self.write_supported():
            raise ContentWriteMissing(
                "this phone's `content` tool has no `write` (Android 6 or older), so "
                "MMS attachments cannot be written into the phone",
                "restore the MMS into a file for SMS Import / Export instead",
            )
        self._clean_up_interrupted()
        own = self.own_numbers([*acceptable, *self.phone_mms])
        threads = self._threads(acceptable, own)
        try:
            for chunk in self._chunks(acceptable, threads, on_rejected):
                self._note_in_flight([item.marker for item in chunk])
                self._write_chunk(chunk, on_written, on_rejected)
                self._note_in_flight([])
        finally:
            self._unstage_all()

    # ------------------------------------------------------------ interrupted runs

    def _in_flight(self) -> set[str]:
        """The markers of the chunk a killed run was writing (they may be incomplete)."""
        if self.journal is None or not self.journal.exists():
            return set()
        try:
            return set(json.loads(self.journal.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return set()

    def _note_in_flight(self, markers: list[str]) -> None:
        """Kept before a chunk is written and cleared once it is whole or removed again,
        so a run killed halfway leaves the next run a list of what to remove first."""
        if self.journal is None:
            return
        if not markers:
            self.journal.unlink(missing_ok=True)
            return
        write_private_atomically(self.journal, json.dumps(markers).encode("utf-8"))

    def _clean_up_interrupted(self) -> None:
        """Remove what a killed run left of its last chunk; it is written again now."""
        listed = ",".join(f"'{marker}'" for marker in sorted(self._in_flight()) if _safe(marker))
        if listed:
            (rows,) = query_exact(
                self.shell,
                [ExactQuery(MMS_URI, ("_id",), where=f"m_id IN ({listed})")],
                "looking for MMS an interrupted restore left",
            )
            self._remove_ids([int(row["_id"] or 0) for row in rows])
        self._note_in_flight([])

    def _acceptable(self, mms: Mms, on_rejected: Callable[[Mms, str], None]) -> bool:
        if mms.box not in RESTORED_BOXES:
            on_rejected(mms, "only received and sent MMS are restored")
            return False
        texts = [mms.subject or "", *(p.text or "" for p in mms.parts)]
        texts += [a for a, _ in mms.addresses]
        if any("\x00" in text for text in texts):
            on_rejected(mms, "contains a NUL character, which `content` cannot take")
            return False
        if not any(a and a != INSERT_ADDRESS_TOKEN for a, _ in mms.addresses):
            on_rejected(mms, "has no address to find its conversation by")
            return False
        return True

    def _threads(self, messages: Sequence[Mms], own: set[str]) -> dict[tuple[str, ...], int]:
        """One Java start per distinct conversation, all in one shell start."""
        wanted = sorted({tuple(recipients(m, own)) for m in messages})
        queries = [
            ExactQuery(
                "content://mms-sms/threadID?"
                + "&".join(f"recipient={quote(a, safe='')}" for a in key),
                ("_id",),
            )
            for key in wanted
        ]
        found: dict[tuple[str, ...], int] = {}
        for start in range(0, len(queries), 100):
            batch = queries[start : start + 100]
            answers = query_exact(self.shell, batch, "looking up conversations")
            for key, rows in zip(wanted[start : start + 100], answers, strict=True):
                if len(rows) != 1 or not (rows[0]["_id"] or "").isdigit():
                    raise PhoneError(
                        "the phone gave no conversation for an MMS",
                        "please report this: the threadID lookup answered unexpectedly",
                    )
                found[key] = int(rows[0]["_id"] or 0)
        self._own = own
        return found

    def _chunks(
        self,
        messages: Sequence[Mms],
        threads: dict[tuple[str, ...], int],
        on_rejected: Callable[[Mms, str], None],
    ) -> Iterator[list[_Written]]:
        chunk: list[_Written] = []
        size = 0
        for mms in messages:
            item = _Written(mms, MARKER + mms.fingerprint)
            item.thread_id = threads[tuple(recipients(mms, self._own))]
            commands = [self._pdu_insert(item), *self._part_inserts(mms, "0")]
            commands += [self._address_insert(0, a, int(k)) for a, k in mms.addresses]
            command_bytes = sum(len(c.encode("utf-8")) + 40 for c in commands)
            if command_bytes > MAX_SCRIPT_BYTES:
                on_rejected(mms, "a text in it is too long for one `content` command line")
                continue
            if chunk and (len(chunk) >= self.chunk or size + command_bytes > MAX_SCRIPT_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += command_bytes
        if chunk:
            yield chunk

    def _write_chunk(
        self,
        chunk: list[_Written],
        on_written: Callable[[Sequence[Mms]], None],
        on_rejected: Callable[[Mms, str], None],
    ) -> None:
        try:
            self._insert_pdus(chunk)
        except PhoneError:
            self._remove_marked(chunk)
            raise
        landed = [item for item in chunk if item.row_id is not None]
        if not landed:
            raise PhoneError(
                f"the phone ignored all {len(chunk)} MMS just written (nothing was kept)",
                "Android drops MMS writes unless the WRITE_SMS app-op is allowed for the "
                "shell: check `appops get com.android.shell WRITE_SMS` through "
                f"{self.shell.kind}; running the restore again skips what is already there",
            )
        for item in chunk:
            if item.row_id is None:
                item.problem = "the phone did not keep the message row"
        try:
            self._insert_parts_and_addresses(landed)
            self._write_files([item for item in landed if item.problem is None])
        except PhoneError:
            self._remove(landed)  # nothing half-restored stays behind
            raise
        broken = [item for item in landed if item.problem is not None]
        self._remove(broken)
        for item in chunk:
            if item.problem is not None:
                on_rejected(item.mms, f"not restored: {item.problem}")
        whole = [item.mms for item in landed if item.problem is None]
        if whole:
            on_written(whole)

    # ------------------------------------------------------------ pdu rows

    def _text(self, value: str) -> str:
        return escape_bind_value(value) if self.escaping == "modern" else value

    def _pdu_insert(self, item: _Written) -> str:
        mms = item.mms
        m_type = mms.message_type or (M_RETRIEVE_CONF if mms.box is Box.INBOX else M_SEND_REQ)
        binds = [
            f"thread_id:l:{item.thread_id}",
            f"date:l:{mms.date_ms // 1000}",
            f"msg_box:i:{int(mms.box)}",
            f"m_type:i:{m_type}",
            f"read:i:{0 if mms.read is False else 1}",
            "seen:i:1",
            "sub_id:i:-1",  # the SIM of the backup may be gone: -1 keeps the row visible
            "ct_t:s:application/vnd.wap.multipart.related",
            "v:i:18",
            f"m_id:s:{item.marker}",
        ]
        if mms.subject is not None:
            # As Android's PduPersister keeps it: the UTF-8 bytes as ISO-8859-1 text.
            raw = mms.subject.encode("utf-8").decode("latin-1")
            binds += [f"sub:s:{self._text(raw)}", f"sub_cs:i:{CHARSET_UTF8}"]
        return _insert(MMS_URI, binds)

    def _insert_pdus(self, chunk: list[_Written]) -> None:
        markers = ",".join(f"'{item.marker}'" for item in chunk)
        (rows,) = query_exact(
            self.shell,
            [ExactQuery(MMS_URI, ("_id", hex_of("m_id")), where=f"m_id IN ({markers})")],
            "writing MMS",
            before=[self._pdu_insert(item) for item in chunk],
        )
        by_marker: dict[str, list[int]] = {}
        for row in rows:
            by_marker.setdefault(row["m_id"] or "", []).append(int(row["_id"] or 0))
        for item in chunk:
            ids = by_marker.get(item.marker, [])
            if len(ids) == 1:
                item.row_id = ids[0]
            elif ids:  # an earlier copy of unknown state: keep the one just written
                item.row_id = max(ids)
                self._remove_ids(sorted(ids)[:-1])

    # ------------------------------------------------------------ parts, addresses

    def _part_inserts(self, mms: Mms, row_id: str) -> list[str]:
        commands = []
        for seq, part in enumerate(p for p in mms.parts if _bare_type(p) != "application/smil"):
            binds = [f"seq:i:{seq}", f"ct:s:{self._text(part.content_type)}"]
            for column, value in (
                ("name", part.name),
                ("cid", part.content_id),
                ("cl", part.content_location),
            ):
                if value is not None:
                    binds.append(f"{column}:s:{self._text(value)}")
            charset = part.charset if part.charset and part.charset.isdigit() else None
            text = _part_text(part)
            if text is not None:
                binds.append(f"chset:i:{charset or CHARSET_UTF8}")
                binds.append(f"text:s:{self._text(text)}")
            elif charset:
                binds.append(f"chset:i:{charset}")
            commands.append(_insert(f"{MMS_URI}/{row_id}/part", binds))
        return commands

    def _address_insert(self, row_id: int, address: str, kind: int) -> str:
        binds = [f"address:s:{self._text(address)}", f"type:i:{kind}", f"charset:i:{CHARSET_UTF8}"]
        return _insert(f"{MMS_URI}/{row_id}/addr", binds)

    def _insert_parts_and_addresses(self, items: list[_Written]) -> None:
        inserts: list[str] = []
        for item in items:
            inserts += self._part_inserts(item.mms, str(item.row_id))
            row_id = item.row_id or 0
            inserts += [self._address_insert(row_id, a, int(k)) for a, k in item.mms.addresses]
        listed = ",".join(str(item.row_id) for item in items)
        part_query = ExactQuery(
            f"{MMS_URI}/part",
            ("_id", "mid", "seq", hex_of("ct"), length_of("text"), hex_of("text")),
            where=f"mid IN ({listed})",
            sort="mid ASC, seq ASC, _id ASC",
        )
        address_queries = [
            ExactQuery(
                f"{MMS_URI}/{item.row_id}/addr",
                ("_id", "type", hex_of("address")),
                sort="_id ASC",
            )
            for item in items
        ]
        part_rows, *address_rows = query_exact(
            self.shell, [part_query, *address_queries], "writing MMS", before=inserts
        )
        for item, addresses in zip(items, address_rows, strict=True):
            got = [(row["address"] or "", int(row["type"] or 0)) for row in addresses]
            if got != [(a, int(k)) for a, k in item.mms.addresses]:
                item.problem = f"{len(got)} of {len(item.mms.addresses)} addresses arrived"
            parts = [row for row in part_rows if row["mid"] == str(item.row_id)]
            self._check_parts(item, parts)

    def _check_parts(self, item: _Written, rows: list[dict[str, str | None]]) -> None:
        expected = [p for p in item.mms.parts if _bare_type(p) != "application/smil"]
        if len(rows) != len(expected):
            item.problem = item.problem or f"{len(rows)} of {len(expected)} parts arrived"
            return
        for part, row in zip(expected, rows, strict=True):
            if row["ct"] != part.content_type or row["text"] != _part_text(part):
                item.problem = item.problem or "a part arrived changed"
                return
        item.part_ids = [int(row["_id"] or 0) for row in rows]

    # ------------------------------------------------------------ attachment bytes

    def _write_files(self, items: list[_Written]) -> None:
        """Stage, ``content write``, read the size back, unstage: per chunk."""
        jobs: list[tuple[_Written, int, bytes]] = []
        for item in items:
            expected = [p for p in item.mms.parts if _bare_type(p) != "application/smil"]
            for part, part_id in zip(expected, item.part_ids, strict=True):
                if in_file(part):
                    jobs.append((item, part_id, _file_bytes(part)))
        if not jobs:
            return
        folder = self._stage_folder()
        lines = []
        staged: list[Path] = []
        try:
            for _, part_id, data in jobs:
                path = folder / f"{secrets.token_hex(8)}.part"
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                staged.append(path)
                uri = f"content://mms/part/{part_id}"
                lines.append(f"{content_command('write', '--uri', uri)} < {shlex.quote(str(path))}")
                lines.append(
                    f'echo "size {part_id} $({content_command("read", "--uri", uri)} '
                    '2>/dev/null | wc -c)"'
                )
            seconds = self.shell.timeout + 6.0 * len(jobs)
            result = self.shell.run("\n".join(lines), timeout=seconds)
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
        sizes: dict[int, int] = {}
        for line in result.stdout.splitlines():
            words = line.split()
            if len(words) == 3 and words[0] == "size" and words[1].isdigit():
                sizes[int(words[1])] = int(words[2]) if words[2].isdigit() else -1
        reason = _last_error(result.stderr)
        for item, part_id, data in jobs:
            if sizes.get(part_id) != len(data) and item.problem is None:
                got = sizes.get(part_id)
                item.problem = (
                    f"an attachment arrived with {got if got is not None else 'no'} of "
                    f"{len(data)} bytes" + (f" ({reason})" if reason else "")
                )

    def _stage_folder(self) -> Path:
        """Where the shell user can read the bytes: shared storage, not Termux's home."""
        parent = self.stage_dir.parent
        if not parent.is_dir():
            raise PhoneError(
                f"MMS attachments are passed to the phone through shared storage, and "
                f"{parent} does not exist",
                "run `termux-setup-storage` and allow Termux to use storage, then run "
                "the restore again (what is on the phone already is skipped)",
            )
        self.stage_dir.mkdir(mode=0o700, exist_ok=True)
        return self.stage_dir.resolve()

    def _unstage_all(self) -> None:
        if self.stage_dir.is_dir():
            for path in self.stage_dir.glob("*.part"):
                path.unlink(missing_ok=True)
            try:
                self.stage_dir.rmdir()
            except OSError:
                log.warning("could not remove the staging folder %s", self.stage_dir)

    # ------------------------------------------------------------ removing again

    def _remove_marked(self, chunk: list[_Written]) -> None:
        """After a failure while inserting pdu rows: remove those that landed anyway."""
        try:
            markers = ",".join(f"'{item.marker}'" for item in chunk)
            (rows,) = query_exact(
                self.shell,
                [ExactQuery(MMS_URI, ("_id",), where=f"m_id IN ({markers})")],
                "removing half-restored MMS",
            )
            self._remove_ids([int(row["_id"] or 0) for row in rows])
        except PhoneError as error:
            log.warning("could not remove half-restored MMS: %s", error.message)

    def _remove(self, items: list[_Written]) -> None:
        self._remove_ids([item.row_id for item in items if item.row_id is not None])

    def _remove_ids(self, ids: list[int]) -> None:
        """Delete by each row's own URI (never a where clause), then confirm they are gone."""
        if not ids:
            return
        listed = ",".join(str(row_id) for row_id in ids)
        (left,) = query_exact(
            self.shell,
            [ExactQuery(MMS_URI, ("_id",), where=f"_id IN ({listed})")],
            "removing half-restored MMS",
            before=[content_command("delete", "--uri", f"{MMS_URI}/{row_id}") for row_id in ids],
        )
        if left:
            raise PhoneError(
                f"{len(left)} half-restored MMS could not be removed again "
                f"(ids {', '.join(r['_id'] or '' for r in left)})",
                "delete those conversations' newest MMS in your messaging app, then run "
                "the restore again",
            )


def _safe(marker: str) -> bool:
    """A journal line is ours only if it is a marker (it goes into a where clause)."""
    rest = marker[len(MARKER) :]
    return (
        marker.startswith(MARKER) and len(rest) == 64 and all(c in "0123456789abcdef" for c in rest)
    )


def _insert(uri: str, binds: Sequence[str]) -> str:
    args = ["insert", "--uri", uri]
    for bind in binds:
        args += ["--bind", bind]
    return content_command(*args)


def _part_text(part: MmsPart) -> str | None:
    """What goes into the ``text`` column: text parts' text; a plain-text part that
    came as bytes is kept as its text (the provider keeps no file for text/plain)."""
    if part.text is not None:
        return part.text
    if _bare_type(part) == "text/plain" and part.data is not None:
        return part.data.decode("utf-8", "replace")
    return None


def _file_bytes(part: MmsPart) -> bytes:
    if part.data is not None:
        return part.data
    return (part.text or "").encode("utf-8")


def _last_error(stderr: str) -> str | None:
    """The last exception line of a failed ``content write`` (it names no message text)."""
    lines = [line.strip() for line in stderr.splitlines() if "Exception" in line]
    return lines[-1][:200] if lines else None


class PhoneMessages:
    """The restore target "phone" for SMS and MMS alike, through rish or su.

    SMS go through :class:`smsbak.phone.writer.PhoneSmsStore`, MMS through
    :class:`PhoneMmsWriter`. Where ``content write`` is missing (Android 6 and
    older) the MMS go into an SMS Import / Export archive instead, with the steps to
    import it, and count as not restored into the phone."""


    def __init__(
        self,
        sms: PhoneSmsStore,
        mms: PhoneMmsWriter,
        *,
        fallback: Callable[[], FileTarget],
    ) -> None:
        self.sms = sms
        self.mms = mms
        self.fallback = fallback
        self.notes: list[str] = []
        self.unconfirmable: ContentWriteMissing | None = None

    @property
    def capabilities(self) -> TargetCapabilities:
        return TargetCapabilities(sms=True, mms=True, calls=False)

    @property
    def description(self) -> str:
        return f"the phone's SMS and MMS store, through {self.sms.shell.description}"

    def existing_fingerprints(self) -> set[str]:
        texts = self.sms.existing_fingerprints()
        try:
            return texts | self.mms.existing_fingerprints()
        except PhoneError as error:
            # The shell works (the SMS were just read): this provider refuses hex() in
            # a projection, which every confirmation of an MMS write uses. Compare as a
            # backup reads, and send the MMS to a file instead of writing unconfirmed.
            log.info("MMS cannot be confirmed on this phone: %s", error.message)
            self.unconfirmable = ContentWriteMissing(
                "this phone's MMS provider refuses the queries that confirm each MMS "
                "written (it takes column names only)",
                "restore the MMS into a file for SMS Import / Export instead",
            )
            reader = MmsReader(self.sms.shell)
            reader.exact = False
            found = [m.mms for page in walk_newest_first(reader.page, PAGE) for m in page.messages]
            return texts | {without_smil(mms).fingerprint for mms in found if mms is not None}

    def prepare(self) -> None:
        self.sms.prepare()

    def write(
        self,
        messages: Sequence[object],
        *,
        on_written: Callable[[Sequence[object]], None],
        on_rejected: Callable[[object, str], None],
    ) -> None:
        texts = [m for m in messages if isinstance(m, Sms)]
        multimedia = [m for m in messages if isinstance(m, Mms)]
        if texts:
            self.sms.write(texts, on_written=on_written, on_rejected=on_rejected)
        if not multimedia:
            return
        self.mms.escaping = self.sms.escaping
        if self.unconfirmable is not None:
            self._into_file(multimedia, self.unconfirmable, on_rejected)
            return
        try:
            self.mms.write(multimedia, on_written=on_written, on_rejected=on_rejected)
        except ContentWriteMissing as error:
            self._into_file(multimedia, error, on_rejected)

    def _into_file(
        self,
        multimedia: Sequence[Mms],
        error: ContentWriteMissing,
        on_rejected: Callable[[object, str], None],
    ) -> None:
        archive = self.fallback()
        archive.prepare()
        archive.write(multimedia, on_written=lambda _: None, on_rejected=on_rejected)
        reason = f"MMS not written into the phone ({error.message}): saved in {archive.path}"
        for mms in multimedia:
            on_rejected(mms, reason)
        self.notes = [
            f"The {len(multimedia)} MMS are in {archive.path}: {error.message}. Import "
            "that file to get them back:",
            *archive.next_steps(),
        ]

    def finish(self) -> None:
        self.sms.finish()

    def next_steps(self) -> list[str]:
        return [*self.sms.next_steps(), *self.notes]
