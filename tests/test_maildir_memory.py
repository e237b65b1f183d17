"""The Maildir destination's memory does not grow with the folder (issue 10's import).

A folder of 500 and one of 3,000 messages: opening it, looking Message-IDs up, a
no-op upload of messages it holds, counting and listing it must peak (tracemalloc)
within the same bound (the index's pages of rows scaled down to 50 with the folders,
so the smaller folder already fills them). The index lives
in SQLite's file with a bounded page cache; before, every file name and Message-ID of
a folder was a Python dict entry (about 500 bytes a message), which this test catches.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

import smsbak.destinations.maildir as maildir
from smsbak.destinations.maildir import INDEX_NAME, MaildirDestination
from smsbak.ports import Confirmed, Outgoing, Rejected

SIZES = (500, 3_000)
ASKED = 50
"""Message-IDs looked up and re-sent per run: the same number in both folders."""
SLACK_BYTES = 128 * 1024
"""What may differ between the two runs (allocator noise, SQLite's wrapper objects);
the old in-memory index took about 1.2 MB more for the larger folder, a listing held
in memory about 650 kB."""


def message_id(n: int) -> str:
    return f"<{n}.bench@smsbak.test>"


def raw(n: int) -> bytes:
    return (
        f"From: +1555{n % 97:04d}\r\nMessage-ID: {message_id(n)}\r\n"
        f"Subject: SMS with +1555{n % 97:04d}\r\n\r\nmessage {n}\r\n"
    ).encode()


def fill(root: Path, count: int) -> None:
    """``count`` files as another tool (mbsync, an import) would leave them in .SMS/cur."""
    destination = MaildirDestination(root)
    handle = destination.ensure_folder("SMS")
    destination.close()
    cur = root / handle / "cur"
    for n in range(count):
        name = f"{1_600_000_000 + n}.M{n % 1_000_000}P1R{n:016x}.bench:2,S"
        fd = os.open(cur / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw(n))
        finally:
            os.close(fd)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    made = {}
    for size in SIZES:
        root = tmp_path_factory.mktemp(f"maildir{size}") / "Maildir"
        fill(root, size)
        made[size] = root
    return made


def asked(size: int) -> list[int]:
    """Spread over the whole folder, the last one included."""
    step = size // ASKED
    return [n * step + step - 1 for n in range(ASKED)]


def a_run(root: Path, size: int) -> None:
    """What a backup or import into a known folder does, and what verify reads."""
    destination = MaildirDestination(root)
    try:
        handle = destination.ensure_folder("SMS")
        wanted = [message_id(n) for n in asked(size)]
        found = destination.find_message_ids(handle, wanted)
        assert sorted(found) == sorted(wanted)
        confirmed: list[Confirmed] = []
        rejected: list[Rejected] = []
        destination.upload(
            (Outgoing(f"key{n}", raw(n), message_id(n), 0, True) for n in asked(size)),
            handle,
            on_confirmed=confirmed.extend,
            on_rejected=rejected.append,
        )
        assert not rejected
        assert [c.remote_id for c in confirmed] == [found[m] for m in wanted]
        assert destination.count(handle) == size
        assert sum(1 for _ in destination.list_ids(handle)) == size
    finally:
        destination.close()


def peak(action: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def files_in(root: Path) -> int:
    return sum(len(os.listdir(root / ".SMS" / sub)) for sub in ("cur", "new"))


def test_lookups_and_a_no_op_upload_are_flat_in_the_folder_size(
    folders: dict[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maildir, "_PAGE", 50)
    for size, root in folders.items():
        a_run(root, size)  # no index yet: every header is read once (as after a lost index)
    peaks = {size: peak(partial(a_run, root, size)) for size, root in folders.items()}
    small, large = SIZES
    assert peaks[large] <= peaks[small] * 1.1 + SLACK_BYTES, peaks
    assert {size: files_in(root) for size, root in folders.items()} == {s: s for s in SIZES}
    assert (folders[large] / ".SMS" / INDEX_NAME).stat().st_mode & 0o777 == 0o600


def test_an_index_in_another_format_is_rebuilt(tmp_path: Path) -> None:
    """An older smsbak's text cache, or a damaged file, is replaced, not trusted."""
    root = tmp_path / "Maildir"
    fill(root, 30)
    (root / ".SMS" / INDEX_NAME).write_bytes(
        f"{1_600_000_000}.M0P1R{0:016x}.bench\t<wrong@id>\n".encode()
    )
    destination = MaildirDestination(root)
    try:
        found = destination.find_message_ids(".SMS", [message_id(0), "<wrong@id>"])
        assert list(found) == [message_id(0)]
        assert destination.count(".SMS") == 30
    finally:
        destination.close()


def test_a_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    """An index that SQLite finds damaged is dropped and rebuilt, not an error."""
    root = tmp_path / "Maildir"
    fill(root, 30)
    first = MaildirDestination(root)
    assert first.count(".SMS") == 30
    first.close()
    index = root / ".SMS" / INDEX_NAME
    data = bytearray(index.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # the header stays: it opens, then fails
    index.write_bytes(bytes(data))
    again = MaildirDestination(root)
    try:
        found = again.find_message_ids(".SMS", [message_id(n) for n in range(30)])
        assert len(found) == 30
        assert again.count(".SMS") == 30
    finally:
        again.close()
    assert index.stat().st_mode & 0o777 == 0o600


def test_an_index_another_process_holds_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Locked (another smsbak writing, a copy being made): a private index this run,
    the shared one neither deleted nor waited on for long, and nothing doubled."""
    import sqlite3

    monkeypatch.setattr(maildir, "INDEX_BUSY_SECONDS", 0.05)
    root = tmp_path / "Maildir"
    fill(root, 30)
    first = MaildirDestination(root)
    assert first.count(".SMS") == 30
    first.close()
    index = root / ".SMS" / INDEX_NAME
    holder = sqlite3.connect(index, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = MaildirDestination(root)
        confirmed: list[Confirmed] = []
        items = [Outgoing(f"k{n}", raw(n), message_id(n)) for n in (5, 30, 30)]
        locked.upload(items, ".SMS", on_confirmed=confirmed.extend, on_rejected=print)
        locked.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "cannot be used" in caplog.text  # the private index was the one used
    assert index.exists()
    assert len(confirmed) == 3 and confirmed[1].remote_id == confirmed[2].remote_id
    assert files_in(root) == 31  # n=5 was there; n=30 written once
    again = MaildirDestination(root)
    try:
        assert again.find_message_ids(".SMS", [message_id(30)]) == {
            message_id(30): confirmed[1].remote_id
        }
    finally:
        again.close()
