"""`smsbak restore` end to end: Gmail emulator -> phone (fake rish/su/content) or files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.mime import decode_sms
from smsbak.model import Box, Sms
from tests.conftest import (
    TEST_QUOTA_PER_MINUTE,
    Bed,
    keep_off_the_network,
    new_bed,
    scaled_emulator,
    write_token,
)
from tests.fakes import sbp_corpus
from tests.fakes.gmail_emulator import GmailEmulator
from tests.format_readers import mms_only, sms_only
from tests.test_backup_e2e import BASE, tricky_corpus

RESTORE_SCOPES = [
    "https://www.googleapis.com/auth/gmail.readonly",
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
]


pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


@dataclass(frozen=True)
class Archive:
    """What one `smsbak backup` of a corpus left in Gmail: each email's raw bytes,
    label names and internal date, and the backup's own output."""

    emails: list[tuple[bytes, list[str], int]]
    stdout: str

    def seed(self, emulator: GmailEmulator) -> None:
        """Put exactly these emails into ``emulator``, as if that backup had gone there."""
        for raw, labels, _ in self.emails:
            emulator.add_message(raw, labels)
        assert archived(emulator) == self.emails, "the seeded Gmail differs from the backup's"


def archived(emulator: GmailEmulator) -> list[tuple[bytes, list[str], int]]:
    names = {label["id"]: label["name"] for label in emulator.labels()}
    return [(m.raw, [names[i] for i in m.label_ids], m.internal_date) for m in emulator.messages()]


def back_up_once(
    tmp_path_factory: pytest.TempPathFactory, corpus: Callable[[Bed], None], **settings: object
) -> Archive:
    """A real `smsbak backup` of ``corpus`` (fake phone -> Gmail emulator), made once
    for a module: the restore tests that start from "backed up, then the phone was
    reset" each get a fresh Gmail seeded with its emails (:meth:`Archive.seed`), a
    fresh phone and a fresh SMSBAK_HOME, instead of each making the same backup."""
    directory = tmp_path_factory.mktemp("archive")
    with pytest.MonkeyPatch.context() as env, scaled_emulator() as emulator:
        keep_off_the_network(env)
        bed = new_bed(directory, emulator, in_process=True)
        bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, **settings)
        corpus(bed)
        result = bed.smsbak("backup")
        assert result.returncode == 0, result.stdout + result.stderr
        assert not bed.phone.sms_send_called()
        return Archive(archived(emulator), result.stdout)


def restore_login(bed: Bed) -> None:
    """`smsbak auth --restore` leaves token-restore.json beside the backup token."""
    write_token(bed.home, bed.emulator, scopes=RESTORE_SCOPES)
    (bed.home / "token.json").rename(bed.home / "token-restore.json")
    write_token(bed.home, bed.emulator)


def phone_view(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """What must survive a restore: address, body, whole-second date, direction, read."""
    return sorted(
        (
            row["address"] or "",
            row["body"] or "",
            int(row["date"]) // 1000,  # type: ignore[call-overload]
            row["type"],
            bool(row["read"]) if row["type"] == 1 else True,
        )
        for row in rows
    )


def factory_reset(bed: Bed) -> None:
    """The phone loses its messages and smsbak's files; Gmail keeps the archive."""
    bed.phone.clear_messages()
    shutil.rmtree(bed.home)
    bed.home.mkdir()
    bed.configure(quota_units_per_minute=15_000_000)
    restore_login(bed)


def corpus(bed: Bed) -> None:
    tricky_corpus(bed.phone)
    with bed.phone.batch():
        bed.phone.add_sms(address="+4917", body="unread one", date=BASE + 60_000, read=False)
        bed.phone.add_sms(address="+4917", body="colon: a\\:b \\ end\\", date=BASE + 61_000)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    made = back_up_once(tmp_path_factory, corpus)
    assert "Backed up 17 new messages" in made.stdout
    return made


@pytest.fixture
def backed_up(bed: Bed, archive: Archive) -> tuple[Bed, list[tuple[object, ...]]]:
    """The corpus was backed up (``archive``: its emails), then the phone was reset."""
    corpus(bed)
    original = phone_view(bed.phone.messages)
    factory_reset(bed)
    archive.seed(bed.emulator)
    return bed, original


@pytest.mark.parametrize("shell", ["rish", "su"])
def test_round_trip_through_the_phone(backed_up: tuple[Bed, list[object]], shell: str) -> None:
    bed, original = backed_up
    bed.phone.enable_privileged(rish=shell == "rish", su=shell == "su")
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "17 messages restored" in result.stdout
    assert phone_view(bed.phone.messages) == original
    unread = [row for row in bed.phone.messages if row["body"] == "unread one"]
    assert [row["read"] for row in unread] == [0]  # the read state survives
    assert bed.phone.appop() in ("default", None)  # the shell keeps no extra right
    again = bed.smsbak("restore", "--to", "phone")
    assert again.returncode == 0, again.stderr
    assert "0 messages restored" in again.stdout
    assert "17  already on the phone" in again.stdout
    assert phone_view(bed.phone.messages) == original
    inserts = bed.emulator.insert_calls
    backup = bed.smsbak("backup")
    assert backup.returncode == 0, backup.stderr
    assert bed.emulator.insert_calls == inserts, "the backup re-uploaded restored messages"


def test_legacy_content_tool_escaping_is_detected(backed_up: tuple[Bed, list[object]]) -> None:
    bed, original = backed_up
    bed.phone.enable_privileged(rish=True)
    bed.phone.set_content(escaping="legacy")
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert phone_view(bed.phone.messages) == original


def test_without_shizuku_or_root_phone_restore_says_what_to_do(
    backed_up: tuple[Bed, list[object]],
) -> None:
    bed, _ = backed_up
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == ExitCode.PHONE
    assert "Shizuku" in result.stderr and "--to smsie:" in result.stderr
    assert bed.phone.messages == []


def test_automatic_target_falls_back_to_an_archive_in_downloads(
    backed_up: tuple[Bed, list[object]], tmp_path: Path
) -> None:
    from smsbak.formats.smsie import read_messages_zip

    bed, original = backed_up
    downloads = tmp_path / "user" / "storage" / "downloads"
    downloads.mkdir(parents=True)
    result = bed.smsbak("restore", HOME=str(tmp_path / "user"))
    assert result.returncode == 0, result.stderr
    (archive,) = downloads.glob("smsbak-restore-*.zip")
    assert "SMS Import / Export" in result.stdout
    assert "default SMS app" in result.stdout
    restored = list(sms_only(read_messages_zip(archive)))
    assert sorted((s.address, s.body, s.date_ms // 1000) for s in restored) == sorted(
        (o[0], o[1], o[2]) for o in original
    )


@pytest.mark.parametrize("kind", ["smsie", "xml"])
def test_round_trip_through_files(
    backed_up: tuple[Bed, list[object]], tmp_path: Path, kind: str
) -> None:
    from smsbak.formats.sbr import read_messages_xml
    from smsbak.formats.smsie import read_messages_zip

    bed, original = backed_up
    path = tmp_path / ("out.zip" if kind == "smsie" else "out.xml")
    result = bed.smsbak("restore", "--to", f"{kind}:{path}")
    assert result.returncode == 0, result.stderr
    reader = read_messages_zip if kind == "smsie" else read_messages_xml
    restored = [
        (
            s.address,
            s.body,
            s.date_ms // 1000,
            int(s.box),
            True if s.box is not Box.INBOX else s.read,
        )
        for s in sms_only(reader(path))
    ]
    assert sorted(restored) == original


def test_legacy_sms_backup_plus_archive(bed: Bed, tmp_path: Path) -> None:
    from smsbak.formats.sbr import read_messages_xml

    restore_login(bed)
    gmail = bed.emulator  # seeded directly, as Gmail holds the old archive
    legacy = [
        Sms("+4917011111", "Grüße aus Berlin 🐻", 1_262_304_000_123, Box.INBOX, True, 3, 11),
        Sms("+4917011111", "line one\nline two", 1_262_304_001_999, Box.SENT, True, 3, 12),
        Sms("DHL", "Paket: =?utf-8?q?no?= encoded", 1_300_000_000_001, Box.INBOX, False, 4, 13),
        Sms("+331234", "français ça va", 1_400_000_000_500, Box.INBOX, None, None, None),
    ]
    for index, sms in enumerate(legacy):
        raw = sbp_corpus.sms_email(
            sms,
            name="Anna" if index == 0 else None,
            language=("de", "en", "fr", "de")[index],
            encoding="base64" if index % 2 else "quoted-printable",
            optional_headers=index != 3,
        )
        gmail.add_message(raw, ["SMS"])
    old = Sms("+49111", "from 2009", 1_230_000_000_000, Box.INBOX)
    gmail.add_message(sbp_corpus.sms_email(old, datatype=None), ["SMS"])
    gmail.add_message(sbp_corpus.mms_email(1_500_000_000, "+4912"), ["SMS"])
    gmail.add_message(sbp_corpus.call_email(1_500_000_000_000, "+4912"), ["SMS"])
    gmail.add_message(sbp_corpus.plain_email(), ["SMS"])
    corrupt = sbp_corpus.sms_email(legacy[0]).replace(
        b"X-smssync-date: 1262304000123", b"X-smssync-date: yesterday"
    )
    gmail.add_message(corrupt.replace(b"Message-ID: <", b"Message-ID: <x"), ["SMS"])
    bad_charset = sbp_corpus.sms_email(
        Sms("+4913", "x", 1_450_000_000_000, Box.INBOX), encoding="base64"
    ).replace(b"eA==", b"//79")
    gmail.add_message(bad_charset, ["SMS"])

    path = tmp_path / "legacy.xml"
    result = bed.smsbak("restore", "--to", f"xml:{path}")
    assert result.returncode == 0, result.stderr
    restored = {(s.address, s.body, s.date_ms, s.box) for s in sms_only(read_messages_xml(path))}
    assert restored == {(s.address, s.body, s.date_ms, s.box) for s in legacy}
    (mms,) = mms_only(read_messages_xml(path))  # SMS Backup+'s MMS emails go into the file too
    assert mms.date_ms == 1_500_000_000_000
    for reason in (
        "no datatype header",
        "datatype CALLLOG",
        "bad date header",
        "body not valid in its charset",
    ):
        assert f"skipped: {reason}" in result.stdout, reason
    assert "10  emails under the label, 5 of them SMS or MMS" in result.stdout


def test_choosing_what_to_restore(backed_up: tuple[Bed, list[object]], tmp_path: Path) -> None:
    from smsbak.formats.smsie import read_messages_zip

    bed, _ = backed_up
    path = tmp_path / "some.zip"
    result = bed.smsbak(
        "restore", "--to", f"smsie:{path}", "--contact", "0170 1111111", "--limit", "3"
    )
    assert result.returncode == 0, result.stderr
    bodies = [s.body for s in sms_only(read_messages_zip(path))]
    assert sorted(bodies) == ["same second, first", "same second, second", "sent to Bob"]
    assert "1  left out by --limit" in result.stdout  # the oldest of Bob's four
    dry = bed.smsbak(
        "restore", "--to", "phone", "--dry-run", "--since", "2026-03-01T12:00:10+01:00"
    )
    assert dry.returncode == ExitCode.PHONE  # no Shizuku/root: the phone is not reachable
    bed.phone.enable_privileged(rish=True)
    dry = bed.smsbak(
        "restore", "--to", "phone", "--dry-run", "--since", "2026-03-01T12:00:10+01:00"
    )
    assert dry.returncode == 0, dry.stderr
    assert "7 messages would be restored" in dry.stdout
    assert bed.phone.messages == []


def test_a_content_tool_failing_halfway_leaves_nothing_to_double(
    backed_up: tuple[Bed, list[object]],
) -> None:
    bed, original = backed_up
    bed.phone.enable_privileged(rish=True)
    bed.phone.set_content(fail_after=5)
    bed.configure(quota_units_per_minute=15_000_000)
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == ExitCode.PHONE
    assert "Error" in result.stderr
    assert 0 < len(bed.phone.messages) < len(original)
    # The provider is gone for good here: the inserts it took cannot be confirmed.
    assert "Error while accessing provider:sms" in result.stderr
    assert "(0 of 17 messages were restored before this; " in result.stderr
    assert "the phone could not be read again to check for more" in result.stderr
    assert "running `smsbak restore` again is safe" in result.stderr
    assert "nothing is written twice" in result.stderr
    assert "0 messages restored to the phone" in result.stdout  # the partial report
    bed.phone.set_content(fail_after=None)
    again = bed.smsbak("restore", "--to", "phone")
    assert again.returncode == 0, again.stderr
    assert phone_view(bed.phone.messages) == original


def test_restore_needs_its_own_read_login(bed: Bed) -> None:
    result = bed.smsbak("restore", "--dry-run", "--to", "xml:x.xml")
    assert result.returncode == ExitCode.AUTH
    assert "smsbak auth --restore" in result.stderr
    token = json.loads((bed.home / "token.json").read_text())
    assert "https://www.googleapis.com/auth/gmail.readonly" not in token["scopes"]


def test_never_sends_an_sms(backed_up: tuple[Bed, list[object]]) -> None:
    bed, original = backed_up
    bed.phone.enable_privileged(rish=True)
    assert bed.smsbak("restore").returncode == 0
    assert phone_view(bed.phone.messages) == original  # with Shizuku the phone is the target
    assert not bed.phone.sms_send_called()
    assert not bed.phone.calls("termux-sms-send")


def test_a_silently_dropped_insert_is_an_error_not_a_success(
    backed_up: tuple[Bed, list[object]], tmp_path: Path
) -> None:
    """A phone where granting WRITE_SMS has no effect: content drops every insert."""
    bed, _ = backed_up
    bed.phone.enable_privileged(rish=True)
    shadow = tmp_path / "ineffective-appops"
    shadow.mkdir()
    (shadow / "appops").write_text("#!/bin/sh\nexit 0\n")
    (shadow / "appops").chmod(0o755)
    path = f"{shadow}:{bed.env()['PATH']}"
    result = bed.smsbak("restore", "--to", "phone", PATH=path)
    assert result.returncode == ExitCode.PHONE
    assert "did not keep 17 of 17 messages" in result.stderr
    assert "WRITE_SMS" in result.stderr
    assert bed.phone.messages == []
    status = json.loads(bed.smsbak("status", "--json").stdout)
    assert status["last_restore"]["result"] == "failed"


def test_queued_and_outbox_messages_are_never_restored(bed: Bed) -> None:
    """A messaging app sends what sits in its queue or outbox: restore must not put any there."""
    restore_login(bed)
    bed.phone.enable_privileged(rish=True)
    for box in (Box.INBOX, Box.OUTBOX, Box.QUEUED, Box.FAILED, Box.DRAFT):
        sms = Sms("+4914", f"box {box.name}", 1_600_000_000_000 + int(box) * 1000, box)
        bed.emulator.add_message(sbp_corpus.sms_email(sms), ["SMS"])
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert [row["body"] for row in bed.phone.messages] == ["box INBOX"]
    assert "queued message (only received and sent are restored)" in result.stdout
    assert "outbox message (only received and sent are restored)" in result.stdout


def test_a_damaged_encoded_word_is_skipped_not_fatal(bed: Bed, tmp_path: Path) -> None:
    restore_login(bed)
    good = Sms("+4915", "fine", 1_600_000_000_000, Box.INBOX)
    bed.emulator.add_message(sbp_corpus.sms_email(good), ["SMS"])
    broken = sbp_corpus.sms_email(Sms("+4916", "x", 1_600_000_001_000, Box.INBOX)).replace(
        b"X-smssync-address: +4916", b"X-smssync-address: =?utf-8?b?Q?="
    )
    bed.emulator.add_message(broken, ["SMS"])
    result = bed.smsbak("restore", "--to", f"xml:{tmp_path / 'out.xml'}")
    assert result.returncode == 0, result.stderr
    assert "skipped: damaged email" in result.stdout
    assert "1 messages restored" in result.stdout


def test_a_restore_before_the_first_backup_does_not_hide_phone_messages(
    bed: Bed, tmp_path: Path
) -> None:
    """Someone coming from SMS Backup+ restores first; the phone holds messages the
    archive lacks (older than its newest one). The first backup must upload them."""
    restore_login(bed)
    archived = Sms("+4917", "in the archive", 1_700_000_000_000, Box.INBOX, True)
    bed.emulator.add_message(sbp_corpus.sms_email(archived), ["SMS"])
    bed.phone.add_sms(address="+4918", body="never archived", date=1_600_000_000_000)
    assert bed.smsbak("restore", "--to", f"xml:{tmp_path / 'r.xml'}").returncode == 0
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    bodies = [decode_sms(m.raw).body for m in bed.emulator.messages("SMS")]
    assert "never archived" in bodies
