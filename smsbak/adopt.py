"""Adopting what a destination already holds, before the first backup into it.

A former SMS Backup+ user's ``SMS`` label holds years of messages under SMS
Backup+'s Message-IDs, which are not smsbak's: without adoption the first backup
would upload every one of them again, and the label would show each conversation
twice. A Maildir or an IMAP server that does not merge a second copy of a
Message-ID doubles everything, too, once the state database is gone. So before the
first backup into a place (nothing recorded there, no adoption finished), the folder
is indexed: every SMS, MMS and call email in it (SMS Backup+'s, smsbak's, imported
ones) is decoded to the identity the phone backup uses, and recorded as backed up at
that place with its remote id and Message-ID. The backup then uploads only the rest.

The folder is read as a stream: ids a chunk at a time, emails in the destination's
own batches at its read speed, each batch decoded and recorded before the next is
read, so memory holds one batch of emails whatever the folder's size.

With a login that cannot read (Gmail's insert-only one) the folder can still be
counted: when it holds more than the state knows of, the first backup stops before
uploading anything and says how to adopt (the read login) or how to go ahead anyway.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from smsbak.backup import KIND_CALL, KIND_MMS, KIND_SMS, Progress
from smsbak.errors import AdoptionNeeded, DestinationError
from smsbak.mime import DecodeError, decode_call, decode_mms, decode_sms
from smsbak.ports import Destination
from smsbak.report import StreamReport
from smsbak.store import StateStore, Uploaded

KINDS = (KIND_SMS, KIND_MMS, KIND_CALL)
ADOPTED = "adopted"
"""Place meta: the adoption of this place finished (JSON: when, how, how many)."""
ADOPTING = "adoption_started"
"""Place meta: an adoption began; without ADOPTED it was cut short and runs again."""
IDS_PER_FETCH = 500
"""Remote ids taken from the listing per fetch: one Gmail list page."""


@dataclass(frozen=True)
class Held:
    """One record email a folder holds, as the state store keys it."""

    remote_id: str
    kind: str
    fingerprint: str
    date_ms: int
    message_id: str


@dataclass
class FolderScan:
    """What reading a folder found: counts only, never a message's text or number."""

    listed: int = 0
    fetched: int = 0
    records: Counter[str] = field(default_factory=Counter)
    """Decoded SMS, MMS and call emails by kind."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Emails that are not records smsbak can read, by reason."""
    not_fetched: int = 0
    stopped: bool = False


@dataclass
class AdoptReport(FolderScan):
    label: str = ""
    place: str = ""
    how: str = "read"
    """"read" (indexed), "absent" (no such folder), "counted" (insert-only, nothing
    foreign there) or "anyway" (insert-only, the person chose to upload anyway)."""
    adopted: Counter[str] = field(default_factory=Counter)
    """Recorded as backed up by this adoption, by kind."""
    already: int = 0
    """Records the state knew already (or a second copy of one in the folder)."""
    seconds: float = 0.0

    @property
    def adopted_total(self) -> int:
        return sum(self.adopted.values())


def _head(raw: bytes) -> email.message.Message:
    """Only the header block: the datatype and Message-ID are all a scan must look at."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)


def decode_held(remote_id: str, raw: bytes) -> Held:
    """The identity of an SMS, MMS or call email; DecodeError (with a reason) otherwise.

    Decoded exactly as restore decodes (``smsbak.mime``), so adoption, restore and
    the phone backup agree on every fingerprint."""
    head = _head(raw)
    datatype = str(head.get("X-smssync-datatype", "")).strip().upper()
    message_id = str(head.get("Message-ID", "")).strip()
    if datatype == "MMS":
        mms = decode_mms(raw)
        return Held(remote_id, KIND_MMS, mms.fingerprint, mms.date_ms, message_id)
    if datatype == "CALLLOG":
        call = decode_call(raw)
        return Held(remote_id, KIND_CALL, call.fingerprint, call.date_ms, message_id)
    sms = decode_sms(raw)  # also names what is wrong: no datatype, another datatype
    return Held(remote_id, KIND_SMS, sms.fingerprint, sms.date_ms, message_id)


def scan_folder(
    destination: Destination,
    folder: str,
    scan: FolderScan,
    on_batch: Callable[[Sequence[Held]], None],
    *,
    progress: Callable[[int], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Read every email in ``folder`` and hand each batch's records to ``on_batch``.

    The listing is consumed a chunk at a time and each chunk fetched in the
    destination's batches (Gmail paces them at its read quota), so neither the ids
    nor the emails of a whole folder are ever held.
    """
    listing: Iterator[str] = iter(destination.list_ids(folder))

    def fetched(parts: Sequence[tuple[str, bytes]]) -> None:
        batch: list[Held] = []
        for remote_id, raw in parts:
            scan.fetched += 1
            try:
                held = decode_held(remote_id, raw)
            except DecodeError as error:
                scan.skipped[error.reason] += 1
                continue
            scan.records[held.kind] += 1
            batch.append(held)
        del parts
        on_batch(batch)
        progress(scan.fetched + scan.not_fetched)

    def rejected(remote_id: str, reason: str) -> None:
        scan.not_fetched += 1

    def stop() -> bool:
        if should_stop():
            scan.stopped = True
        return scan.stopped

    while not stop():
        chunk = list(islice(listing, IDS_PER_FETCH))
        if not chunk:
            return
        scan.listed += len(chunk)
        destination.fetch_raw(chunk, on_fetched=fetched, on_rejected=rejected, should_stop=stop)


def unknown_of(store: StateStore, place: str, batch: Sequence[Held]) -> tuple[list[Held], int]:
    """Of ``batch``, the records ``place`` does not know by fingerprint or Message-ID
    (one of each fingerprint), and how many it knew."""
    known = store.known([h.fingerprint for h in batch], place)
    known_ids = store.known_message_ids([h.message_id for h in batch], place)
    new: dict[str, Held] = {}
    for held in batch:
        if held.fingerprint in known or (held.message_id and held.message_id in known_ids):
            continue
        new.setdefault(held.fingerprint, held)
    return list(new.values()), len(batch) - len(new)


def record_held(store: StateStore, place: str, held: Sequence[Held]) -> None:
    store.record_uploaded(
        [Uploaded(h.fingerprint, h.kind, h.date_ms, h.remote_id, h.message_id) for h in held],
        place,
    )


def needs_adoption(store: StateStore, place: str) -> bool:
    """Is the next backup into ``place`` its first (or does a cut-short adoption need
    finishing)? Nothing recorded there and no adoption finished."""
    if store.get_meta(ADOPTED, place) is not None:
        return False
    if store.get_meta(ADOPTING, place) is not None:
        return True
    return not any(store.count(kind, place) for kind in KINDS)


def mark_adopted(store: StateStore, place: str, how: str, records: int) -> None:
    value = json.dumps({"at": int(time.time()), "how": how, "records": records})
    store.set_meta(ADOPTED, value, place)


def adopt_folder(
    destination: Destination,
    label: str,
    store: StateStore,
    place: str,
    *,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> AdoptReport:
    """Index ``label`` of a readable destination and record what it holds at ``place``.

    Every batch is recorded as soon as it is decoded, so an adoption cut short keeps
    what it read and the next run goes on (ADOPTING stays without ADOPTED). Emails the
    destination would not return leave the adoption unfinished: the backup must not
    upload a message whose copy there could not be read, so this raises.
    """
    started = clock()
    report = AdoptReport(label=label, place=place)
    folder = destination.find_folder(label)
    if folder is None:
        report.how = "absent"
        mark_adopted(store, place, report.how, 0)
        return report
    store.set_meta(ADOPTING, str(int(time.time())), place)
    total = destination.count(folder) if destination.capabilities.counts_folder else None

    def batch(held: Sequence[Held]) -> None:
        new, known = unknown_of(store, place, held)
        report.already += known
        if new:
            record_held(store, place, new)
            report.adopted.update(h.kind for h in new)

    scan_folder(
        destination,
        folder,
        report,
        batch,
        progress=lambda done: progress(Progress("adopt", done, total)),
        should_stop=should_stop,
    )
    report.seconds = clock() - started
    if report.not_fetched:
        raise DestinationError(
            f"{destination.description} did not return {report.not_fetched} of the "
            f"{report.listed} emails under {label!r}, so smsbak cannot tell whether they are "
            f"copies of messages on the phone; nothing was uploaded "
            f"({report.adopted_total} messages found there are recorded)",
            "run the backup again later: it goes on reading where this one stopped",
        )
    if not report.stopped:
        mark_adopted(store, place, report.how, report.adopted_total)
    return report


def check_unreadable_folder(
    destination: Destination,
    label: str,
    store: StateStore,
    place: str,
    *,
    upload_anyway: bool,
) -> AdoptReport:
    """A login that cannot read the folder (Gmail's insert-only one): count it.

    Stops the first backup (AdoptionNeeded) when the folder holds more than the state
    knows of at ``place``: those were not put there by this smsbak's state, and an
    upload could show each of them twice. ``upload_anyway`` goes ahead.
    """
    report = AdoptReport(label=label, place=place, how="counted")
    folder = destination.find_folder(label)
    if folder is None:
        report.how = "absent"
        mark_adopted(store, place, report.how, 0)
        return report
    held = destination.count(folder)
    known = sum(store.count(kind, place) for kind in KINDS)
    report.listed = held
    if held > known and not upload_anyway:
        raise AdoptionNeeded(
            f"the label {label!r} in {destination.description} already holds {held} "
            f"messages smsbak has no record of (SMS Backup+'s, perhaps, or smsbak's own "
            "from before its state database was lost), and this login can only add "
            "messages, not read them; nothing was uploaded",
            "to back up only what is missing, let smsbak read the label once: "
            "`smsbak auth --restore --client-secrets FILE`, then `smsbak backup` again. "
            "To upload everything anyway: `smsbak backup --upload-anyway` (Gmail keeps "
            "one copy of smsbak's own emails, but SMS Backup+'s messages would then show "
            "twice)",
        )
    if held > known:
        report.how = "anyway"
    mark_adopted(store, place, report.how, 0)
    return report


def before_first_backup(
    store: StateStore,
    place: str,
    label: str,
    report: StreamReport,
    *,
    destination: Destination,
    reader: Callable[[], Destination | None],
    upload_anyway: bool,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> AdoptReport | None:
    """The backup engine's ``prepare_place``: adopt before the first backup into a place.

    ``reader`` opens a login that can read ``destination``'s folder (the wiring's
    choice: the destination itself, or Gmail's read login), or returns None. Notes
    what was adopted on ``report``; sets ``report.stopped`` when a stop request cut
    the adoption short (the engine then uploads nothing).
    """
    if not needs_adoption(store, place):
        return None
    readable = reader()
    if readable is None:
        if not destination.capabilities.counts_folder:
            report.warnings.append(
                f"{destination.description} can neither be read nor counted with this login: "
                f"messages already under {label!r} could not be checked for copies"
            )
            mark_adopted(store, place, "unchecked", 0)
            return None
        result = check_unreadable_folder(
            destination, label, store, place, upload_anyway=upload_anyway
        )
        if result.how == "anyway":
            report.notes.append(
                f"{label!r} held {result.listed} messages smsbak could not read to adopt; "
                "uploading anyway (--upload-anyway)"
            )
        return result
    result = adopt_folder(readable, label, store, place, progress=progress, should_stop=should_stop)
    if result.stopped:
        report.stopped = True
        report.notes.append(
            f"Stopped while reading what {label!r} already holds; "
            f"{result.adopted_total} found so far are recorded, the next run goes on"
        )
    elif result.how == "read":
        report.notes.append(adoption_note(result, destination.description))
    return result


def adoption_note(result: AdoptReport, where: str) -> str:
    kinds = ", ".join(
        f"{result.adopted[kind]} {noun}"
        for kind, noun in ((KIND_SMS, "SMS"), (KIND_MMS, "MMS"), (KIND_CALL, "calls"))
        if result.adopted[kind]
    )
    other = sum(result.skipped.values())
    return (
        f"Adopted {result.adopted_total} messages already under {result.label!r} in {where}"
        + (f" ({kinds})" if kinds else "")
        + (f"; {other} other emails there left alone" if other else "")
        + ": only what is missing is uploaded"
    )
