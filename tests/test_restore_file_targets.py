"""Restores into a file (``--to xml:FILE``, ``--to smsie:FILE.zip``) with memory flat in
the archive's size (issue 13 item 4), in-process over the twins.

The restore engine hands its target a sequence decoded from the spool as it is read;
FileTarget streams it into the format's writer in one pass, and the writers keep every
SMS before every MMS (as they always wrote) by holding the MMS in an unnamed file
beside the target. These tests guard the peak at a small scale with tracemalloc, that
the mixed stream writes the very bytes the two-list form writes, and that a stream
that breaks leaves the old file and nothing else. The 20,000-email figure (peak RSS)
is benchmarks/restore_memory.py's.
"""

from __future__ import annotations

import stat
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from smsbak.destinations.memory import MemoryDestination
from smsbak.formats.sbr import read_messages_xml, write_message_stream_xml, write_messages_xml
from smsbak.formats.smsie import (
    read_messages_zip,
    write_message_stream_zip,
    write_messages_zip,
)
from smsbak.model import Mms, MmsPart, Sms
from smsbak.restore import RestoreEngine, RestoreOptions
from smsbak.restore_targets import FileTarget
from smsbak.store import StateStore, place_key
from tests.fakes import archive_corpus as corpus
from tests.test_memory_flat import LONG, SLACK_BYTES, generated, sms_archive
from tests.test_memory_flat import small_batches as small_batches  # a fixture used here

SUFFIX = {"xml": ".xml", "smsie": ".zip"}


def read_back(kind: str, path: Path) -> list[Sms | Mms]:
    return list(read_messages_xml(path) if kind == "xml" else read_messages_zip(path))


SIZES = (30, 120, 600)
"""A first restore (its one-time allocations in neither figure), then the two compared."""


@pytest.fixture(scope="module")
def archives() -> dict[int, MemoryDestination]:
    """Labels of real SMS Backup+ emails (made by the codec), made once: reading them
    does not change them."""
    return {count: sms_archive(count) for count in SIZES}


def peak_of_file_restore(
    tmp_path: Path, kind: str, archive: MemoryDestination, count: int
) -> tuple[int, Path]:
    path = tmp_path / f"restore-{count}{SUFFIX[kind]}"
    target = FileTarget(kind, path, read_phone=set)  # after a factory reset
    with StateStore(tmp_path / f"after-{kind}-{count}.sqlite3") as after:
        tracemalloc.start()  # the archive twin's emails are allocated already: not counted
        try:
            report = RestoreEngine(
                archive=archive, target=target, store=after, matches_contact=lambda a, b: a == b
            ).run(RestoreOptions(label="SMS"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.written == count and not report.refused
        assert after.count("sms", place_key(archive.identity, "SMS")) == count
    return peak, path


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_a_file_restore_five_times_larger_peaks_within_a_bound_of_the_smaller(
    tmp_path: Path, kind: str, archives: dict[int, MemoryDestination]
) -> None:
    first, small_count, large_count = SIZES
    peak_of_file_restore(tmp_path, kind, archives[first], first)
    small, _ = peak_of_file_restore(tmp_path, kind, archives[small_count], small_count)
    large, path = peak_of_file_restore(tmp_path, kind, archives[large_count], large_count)
    # Gathered into lists, 480 more decoded SMS cost ~1 kB each (~450 kB); streamed,
    # one fetch batch and one message (the ids listed grow: ~100 B each).
    assert large <= small + SLACK_BYTES, (small, large)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []
    written = read_back(kind, path)
    assert [m.fingerprint for m in written] == [
        generated(n, LONG).fingerprint for n in range(large_count)
    ]


def mixed(count: int) -> Iterator[Sms | Mms]:
    """SMS and MMS interleaved as a spool of one label hands them out (oldest first),
    made as they are asked for; every fifth one an MMS with a 2 KiB picture."""
    template = corpus.mms_records(1)[0]
    for n in range(count):
        if n % 5 == 4:
            yield replace(
                template,
                date_ms=1_700_000_000_000 + n * 1000,
                parts=(
                    *template.parts[:1],
                    MmsPart("image/png", name=f"p{n}.png", data=bytes([n % 256]) * 2048),
                ),
            )
        else:
            yield replace(generated(n, LONG), date_ms=1_700_000_000_000 + n * 1000)


def _peak_writing(write: object, path: Path, count: int) -> int:
    assert callable(write)
    tracemalloc.start()
    try:
        write(path, mixed(count))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_a_mixed_stream_is_written_with_memory_flat_in_its_length(
    tmp_path: Path, kind: str
) -> None:
    write = write_message_stream_xml if kind == "xml" else write_message_stream_zip
    _peak_writing(write, tmp_path / f"first{SUFFIX[kind]}", 30)  # one-time allocations
    small = _peak_writing(write, tmp_path / f"small{SUFFIX[kind]}", 120)
    large = _peak_writing(write, tmp_path / f"large{SUFFIX[kind]}", 600)
    # Gathered into lists, 384 more long SMS and 96 more MMS cost ~700 kB.
    assert large <= small + SLACK_BYTES, (small, large)
    back = read_back(kind, tmp_path / f"large{SUFFIX[kind]}")
    expected = list(mixed(600))
    sms_first = [m for m in expected if isinstance(m, Sms)] + [
        m for m in expected if isinstance(m, Mms)
    ]
    assert [m.fingerprint for m in back] == [m.fingerprint for m in sms_first]


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_a_mixed_stream_writes_the_bytes_the_two_lists_write(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the importing apps were tested with stays what they get: every SMS before
    every MMS, attachments numbered in MMS order, one ``count`` on the root."""
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)  # sbr: the backup_set
    moment = time.localtime()
    monkeypatch.setattr(time, "localtime", lambda *_: moment)  # smsie: entry dates
    sms = corpus.sms_records()
    mms = corpus.mms_records()
    interleaved: list[Sms | Mms] = [*sms[:3], mms[0], *sms[3:11], mms[1], mms[2], *sms[11:]]
    interleaved.append(mms[3])
    lists, stream = tmp_path / f"lists{SUFFIX[kind]}", tmp_path / f"stream{SUFFIX[kind]}"
    if kind == "xml":
        a = write_messages_xml(lists, sms, mms, contact_names=corpus.NAMES, backup_date_ms=1)
        b = write_message_stream_xml(
            stream, interleaved, contact_names=corpus.NAMES, backup_date_ms=1
        )
        counts = (a.sms, a.mms, b.sms, b.mms)
        assert b'<smses count="24"' in stream.read_bytes()
    else:
        c = write_messages_zip(lists, sms, mms, contact_names=corpus.NAMES)
        d = write_message_stream_zip(stream, interleaved, contact_names=corpus.NAMES)
        counts = (c.sms, c.mms, d.sms, d.mms)
        assert d.attachments == 4
    assert counts == (len(sms), len(mms), len(sms), len(mms))
    assert stream.read_bytes() == lists.read_bytes()


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_a_stream_that_breaks_after_an_mms_leaves_the_old_file_and_nothing_else(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"restore{SUFFIX[kind]}"
    write = write_message_stream_xml if kind == "xml" else write_message_stream_zip
    write(path, corpus.sms_records(2))
    before = path.read_bytes()

    def broken() -> Iterator[Sms | Mms]:
        yield corpus.sms_records(1)[0]
        yield corpus.mms_records(1)[0]  # already in the MMS file beside the target
        raise RuntimeError("archive went away")

    with pytest.raises(RuntimeError):
        write(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
