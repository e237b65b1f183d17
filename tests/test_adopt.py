"""Adoption: the first backup into a folder that already holds messages uploads only
the rest. In-process over the memory twins and a real Maildir (milliseconds each)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smsbak.adopt import ADOPTED, adopt_folder, before_first_backup, needs_adoption
from smsbak.backup import KIND_MMS, BackupEngine, BackupOptions, BackupReport, MmsStream
from smsbak.config import Settings
from smsbak.destinations.maildir import MaildirDestination
from smsbak.destinations.memory import MemoryDestination, message_id_of
from smsbak.errors import AdoptionNeeded, DestinationError, ExitCode
from smsbak.mime import encode_sms
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from smsbak.ports import Destination, Outgoing, PhoneMms
from smsbak.sources.memory import MemorySource
from smsbak.store import StateStore, place_key
from tests.fakes.sbp_corpus import call_email, mms_email, plain_email, sms_email

BASE = 1_500_000_000_000


def phone_sms(n: int) -> list[Sms]:
    return [
        Sms(
            address=f"+4917{i:07d}",
            body=f"Nachricht {i} ü",
            date_ms=BASE + i * 60_000 + 123,  # SMS Backup+ kept the milliseconds
            box=Box.INBOX if i % 2 else Box.SENT,
            read=True,
            thread_id=i % 5,
            android_id=1000 + i,
        )
        for i in range(n)
    ]


def preload(destination: Destination, label: str, raws: list[bytes]) -> None:
    """Put emails into ``label`` as another program did (SMS Backup+, an older install)."""
    folder = destination.ensure_folder(label)
    items = [
        Outgoing(key=f"pre-{i}", raw=raw, message_id=message_id_of(raw), date_ms=BASE)
        for i, raw in enumerate(raws)
    ]
    confirmed: list[str] = []
    refused: list[str] = []
    destination.upload(
        items,
        folder,
        on_confirmed=lambda parts: confirmed.extend(p.key for p in parts),
        on_rejected=lambda part: refused.append(part.reason),
    )
    assert (len(confirmed), refused) == (len(raws), [])


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.db")


def engine(
    source: MemorySource,
    store: StateStore,
    destination: Destination,
    *,
    reader: Callable[[], Destination | None] | None = None,
    upload_anyway: bool = False,
    stream: MmsStream | None = None,
) -> BackupEngine:
    settings = Settings()
    place = place_key(destination.identity, settings.label)

    def prepare(report: BackupReport) -> object:
        return before_first_backup(
            store,
            place,
            settings.label,
            report,
            destination=destination,
            reader=reader or (lambda: destination if destination.capabilities.readable else None),
            upload_anyway=upload_anyway,
        )

    return BackupEngine(
        source=source,
        store=store,
        identity=destination.identity,
        open_destination=lambda: (destination, "me@example.com"),
        settings=settings,
        contact_book=lambda _: _NoNames(),
        stream=stream,
        prepare_place=prepare,
    )


class _NoNames:
    def name_for(self, address: str) -> str | None:
        return None


def sbp_label(messages: list[Sms]) -> list[bytes]:
    """What SMS Backup+ left: its SMS emails, mixed encodings, plus mail that is not an SMS."""
    raws = [
        sms_email(m, encoding="base64" if i % 3 else "quoted-printable")
        for i, m in enumerate(messages)
    ]
    return [*raws, call_email(BASE, "+4930123456"), plain_email()]


@pytest.mark.parametrize("merges", [True, False])
def test_first_backup_uploads_only_what_sms_backup_plus_did_not(
    store: StateStore, merges: bool
) -> None:
    messages = phone_sms(30)
    destination = MemoryDestination("adopt", merges_message_ids=merges)
    preload(destination, "SMS", sbp_label(messages[:20]))
    before = destination.stores

    report = engine(MemorySource(messages), store, destination).run(BackupOptions())

    assert report.already == 20
    assert report.uploaded == 10
    assert destination.stores - before == 10
    assert len(destination.folder_messages("SMS")) == 22 + 10
    assert any("Adopted 21 messages" in note and "1 calls" in note for note in report.notes)
    place = place_key(destination.identity, "SMS")
    assert store.get_meta(ADOPTED, place) is not None
    # The next run is an ordinary one: nothing is indexed or uploaded again.
    again = engine(MemorySource(messages), store, destination).run(BackupOptions(full=True))
    assert (again.uploaded, again.notes) == (0, [])


def test_maildir_preloaded_with_sms_backup_plus_gets_only_the_rest(
    store: StateStore, tmp_path: Path
) -> None:
    messages = phone_sms(12)
    maildir = MaildirDestination(tmp_path / "Mail")
    preload(maildir, "SMS", sbp_label(messages[:8]))

    report = engine(MemorySource(messages), store, maildir).run(BackupOptions())

    assert (report.already, report.uploaded) == (8, 4)
    assert maildir.count(maildir.ensure_folder("SMS")) == 10 + 4


def test_state_deleted_then_no_doubles_on_a_maildir(tmp_path: Path) -> None:
    messages = phone_sms(15)
    maildir = MaildirDestination(tmp_path / "Mail")
    with StateStore(tmp_path / "one.db") as first:
        assert engine(MemorySource(messages), first, maildir).run(BackupOptions()).uploaded == 15
    (tmp_path / "one.db").unlink()  # Termux reinstalled: the state is gone

    messages += phone_sms(18)[15:]
    with StateStore(tmp_path / "one.db") as fresh:
        report = engine(MemorySource(messages), fresh, maildir).run(BackupOptions())

    assert (report.already, report.uploaded) == (15, 3)
    assert maildir.count(maildir.ensure_folder("SMS")) == 18


def test_state_deleted_then_no_doubles_of_mms_on_a_non_merging_destination(
    tmp_path: Path,
) -> None:
    """The phone's MMS carries a SMIL part its email does not: it is matched by Message-ID."""
    mms = [
        PhoneMms(
            mms=Mms(
                date_ms=BASE + i * 1000,
                box=Box.INBOX,
                addresses=(("+491701", AddressKind.FROM), ("+491702", AddressKind.TO)),
                parts=(
                    MmsPart("application/smil", name="smil.xml", text="<smil/>"),
                    MmsPart("text/plain", name="text_0.txt", text=f"Bild {i}"),
                    MmsPart("image/jpeg", name="a.jpg", data=b"\xff\xd8" + bytes([i])),
                ),
            ),
            row_id=i,
            date_ms=BASE + i * 1000,
        )
        for i in range(4)
    ]
    destination = MemoryDestination("mms", merges_message_ids=False)
    with StateStore(tmp_path / "a.db") as first:
        source = MemorySource(mms=mms)
        report = engine(source, first, destination, stream=MmsStream("SMS")).run(BackupOptions())
        assert report.uploaded == 4
    with StateStore(tmp_path / "b.db") as fresh:
        source = MemorySource(mms=mms)
        report = engine(source, fresh, destination, stream=MmsStream("SMS")).run(BackupOptions())
        assert fresh.count(KIND_MMS, place_key(destination.identity, "SMS")) == 4
    assert (report.already, report.uploaded) == (4, 0)
    assert len(destination.folder_messages("SMS")) == 4


def test_smsbak_own_emails_are_adopted_too(store: StateStore) -> None:
    messages = phone_sms(6)
    destination = MemoryDestination("own", merges_message_ids=False)
    own = [
        encode_sms(
            m, account="me@example.com", contact_name=None, zone=UTC, backup_time=datetime.now(UTC)
        ).raw
        for m in messages[:4]
    ]
    preload(destination, "SMS", own)
    report = engine(MemorySource(messages), store, destination).run(BackupOptions())
    assert (report.already, report.uploaded) == (4, 2)


def test_insert_only_login_stops_before_uploading_anything(store: StateStore) -> None:
    messages = phone_sms(5)
    destination = MemoryDestination("gmail-like", readable=False, counts_folder=True)
    preload(destination, "SMS", sbp_label(messages[:3]))
    before = destination.stores

    with pytest.raises(AdoptionNeeded) as caught:
        engine(MemorySource(messages), store, destination).run(BackupOptions())

    assert caught.value.exit_code == ExitCode.USAGE
    assert "5 messages" in caught.value.message
    assert caught.value.hint is not None
    assert "smsbak auth --restore" in caught.value.hint
    assert "--upload-anyway" in caught.value.hint
    assert destination.stores == before
    assert store.count("sms", place_key(destination.identity, "SMS")) == 0
    assert store.last_run("backup") is not None and store.last_run("backup").result == "failed"  # type: ignore[union-attr]


def test_insert_only_login_with_upload_anyway_goes_ahead(store: StateStore) -> None:
    messages = phone_sms(5)
    destination = MemoryDestination("gmail-like", readable=False, counts_folder=True)
    preload(destination, "SMS", sbp_label(messages[:3]))

    report = engine(MemorySource(messages), store, destination, upload_anyway=True).run(
        BackupOptions(upload_anyway=True)
    )

    assert report.uploaded == 5
    assert any("uploading anyway" in note for note in report.notes)
    # Later runs are not first runs: they neither stop nor ask again.
    assert engine(MemorySource(messages), store, destination).run(BackupOptions()).uploaded == 0


def test_insert_only_login_into_an_empty_or_absent_label_just_backs_up(store: StateStore) -> None:
    destination = MemoryDestination("gmail-like", readable=False, counts_folder=True)
    report = engine(MemorySource(phone_sms(3)), store, destination).run(BackupOptions())
    assert report.uploaded == 3


def test_a_readable_reader_other_than_the_destination_adopts(store: StateStore) -> None:
    """Gmail: the insert-only login uploads, the read login (restore token) reads."""
    messages = phone_sms(6)
    stored = MemoryDestination("gmail", merges_message_ids=True)
    preload(stored, "SMS", sbp_label(messages[:4]))
    insert_only = MemoryDestination("gmail", readable=False)  # the same mailbox:
    insert_only.messages, insert_only._folders = stored.messages, stored._folders
    report = engine(MemorySource(messages), store, insert_only, reader=lambda: stored).run(
        BackupOptions()
    )
    assert (report.already, report.uploaded) == (4, 2)


def test_adoption_cut_short_goes_on_next_time_and_uploads_nothing_meanwhile(
    store: StateStore,
) -> None:
    messages = phone_sms(120)
    destination = MemoryDestination("big", merges_message_ids=False, batch_size=10)
    preload(destination, "SMS", sbp_label(messages[:100]))
    before = destination.stores
    place = place_key(destination.identity, "SMS")
    calls = {"n": 0}

    def stop_after_some() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    first = adopt_folder(destination, "SMS", store, place, should_stop=stop_after_some)
    assert first.stopped and 0 < first.adopted_total < 101
    assert needs_adoption(store, place)  # unfinished: the next backup goes on

    report = engine(MemorySource(messages), store, destination).run(BackupOptions())
    assert (report.already, report.uploaded) == (100, 20)
    assert destination.stores - before == 20


def test_emails_that_cannot_be_fetched_leave_the_adoption_unfinished(store: StateStore) -> None:
    messages = phone_sms(4)
    destination = MemoryDestination("flaky", merges_message_ids=False)
    preload(destination, "SMS", sbp_label(messages))
    destination.messages.pop(next(iter(destination.messages)))  # listed, not returned
    place = place_key(destination.identity, "SMS")
    with pytest.raises(DestinationError) as caught:
        engine(MemorySource(messages), store, destination).run(BackupOptions())
    assert "did not return 1" in caught.value.message
    assert needs_adoption(store, place)


def test_sms_backup_plus_mms_are_known_by_their_message_id(store: StateStore) -> None:
    """Its MMS email lacks the SMIL part and the part names the phone's identity covers;
    the Message-ID SMS Backup+ derived from date, address and m_type matches instead."""

    def phone_mms(row: int, seconds: int) -> PhoneMms:
        return PhoneMms(
            mms=Mms(
                date_ms=seconds * 1000,
                box=Box.INBOX,
                addresses=(("+4917055", AddressKind.FROM), ("+4915199", AddressKind.TO)),
                parts=(
                    MmsPart("application/smil", name="smil.xml", text="<smil/>"),
                    MmsPart("text/plain", name="text_0.txt", text="Bild"),
                ),
                message_type=132,
            ),
            row_id=row,
            date_ms=seconds * 1000,
        )

    old, new = phone_mms(1, 1_500_000_000), phone_mms(2, 1_500_000_100)
    destination = MemoryDestination("sbp-mms", merges_message_ids=False)
    preload(destination, "SMS", [mms_email(1_500_000_000, "+4917055")])
    source = MemorySource(mms=[old, new])

    report = engine(source, store, destination, stream=MmsStream("SMS")).run(BackupOptions())

    assert (report.already, report.uploaded) == (1, 1)
    assert len(destination.folder_messages("SMS")) == 2


def test_adoption_streams_the_folder_a_chunk_at_a_time(store: StateStore) -> None:
    """Memory flat: the listing is consumed as fetching goes, never all at once, and no
    fetch asks for more than one chunk of ids."""
    messages = phone_sms(1_200)
    destination = MemoryDestination("stream", merges_message_ids=True)
    preload(destination, "SMS", [sms_email(m) for m in messages])
    listed = {"n": 0}
    asked: list[tuple[int, int]] = []  # (ids listed so far, ids in this fetch)
    inner_list, inner_fetch = destination.list_ids, destination.fetch_raw

    def list_ids(folder: str, query: str = "") -> Iterator[str]:
        for remote_id in inner_list(folder, query):
            listed["n"] += 1
            yield remote_id

    def fetch_raw(ids: Iterable[str], **kwargs: Any) -> None:
        chunk = list(ids)
        asked.append((listed["n"], len(chunk)))
        inner_fetch(chunk, **kwargs)

    destination.list_ids = list_ids  # type: ignore[method-assign]
    destination.fetch_raw = fetch_raw  # type: ignore[method-assign]
    report = adopt_folder(destination, "SMS", store, place_key(destination.identity, "SMS"))

    assert report.adopted_total == 1_200
    assert [n for _, n in asked] == [500, 500, 200]
    assert [so_far for so_far, _ in asked] == [500, 1000, 1200]
