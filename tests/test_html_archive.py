"""The HTML archive without a browser: paging, incremental re-runs, safe files,
`smsbak view` and its termux-open, refusals. (In a browser: test_html_browser.py.)
The CLI runs in the test process (``cli_in_process``); the desktop browser's test starts
a Python of its own, for a clean PATH and a fresh ``webbrowser`` module."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from pathlib import Path

import pytest

from smsbak.archive_site import SiteBuilder
from smsbak.archive_site.builder import PAGE_BYTES, PAGE_MESSAGES
from smsbak.archive_site.files import download_name, safe_name, sniff_picture
from smsbak.errors import ExitCode
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from tests.conftest import Bed, with_termux_reader
from tests.test_backup_e2e import BASE, tricky_corpus
from tests.test_html_browser import png
from tests.test_restore_e2e import restore_login

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


@pytest.fixture
def bed(bed: Bed) -> Bed:
    return with_termux_reader(bed)  # the reader is not what this file tests


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the site: its hash and modification time (ns)."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in folder.rglob("*")
        if path.is_file()
    }


def builder(folder: Path) -> SiteBuilder:
    return SiteBuilder(folder, zone=UTC, zone_name="UTC")


def conversation(count: int, address: str = "+4917012345", start: int = BASE) -> list[Sms]:
    return [
        Sms(address, f"message number {i} " + "x" * (i % 50), start + i * 60_000,
            Box.INBOX if i % 3 else Box.SENT)
        for i in range(count)
    ]  # fmt: skip


def test_a_20000_message_conversation_is_paged_into_small_pages(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(20_000) + conversation(20, "+4930111"))
    report = site.build()
    assert report.messages == 20_020
    big = sorted((tmp_path / "c").glob("*/p*.html"), key=lambda p: p.stat().st_size)
    pages_of = {p.parent.name for p in big}
    assert len(pages_of) == 2
    largest = big[-1].stat().st_size
    small = next(p for p in big if len(list(p.parent.glob("p*.html"))) == 1)
    assert largest < 80_000, largest  # 200 messages, not 20,000
    assert largest < 40 * small.stat().st_size
    assert len(big) == 20_000 // PAGE_MESSAGES + 1
    index = (tmp_path / "index.html").read_text()
    assert f"p{20_000 // PAGE_MESSAGES}.html" in index  # the index opens the newest page
    assert max(p.stat().st_size for p in (tmp_path / "search").rglob("*.js")) < 300_000


def test_long_messages_end_a_page_early(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add([Sms("+4917", "y" * 20_000 + str(i), BASE + i, Box.INBOX) for i in range(40)])
    site.build()
    pages = list((tmp_path / "c").glob("*/p*.html"))
    assert len(pages) > 1
    assert max(p.stat().st_size for p in pages) < PAGE_BYTES + 30_000


def test_a_rebuild_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(500) + conversation(3, "+4930111"))
    site.build()
    before = snapshot(tmp_path)
    report = builder(tmp_path).build()
    assert report.files_written == 0 and report.conversations_rendered == 0
    assert snapshot(tmp_path) == before


def test_new_messages_change_only_their_conversation_and_its_last_page(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(450) + conversation(3, "+4930111"))
    site.build()
    before = snapshot(tmp_path)
    later = builder(tmp_path)
    later.add([Sms("+4917012345", "new one", BASE + 10**9, Box.INBOX)])
    later.build()
    after = snapshot(tmp_path)
    changed = {name for name in after if before.get(name) != after[name]}
    pages = sorted(n for n in changed if n.startswith("c/"))
    assert len(pages) == 1 and pages[0].endswith("/p3.html"), pages  # 450 -> 3 pages of 200
    other = [n for n in after if n.startswith("c/") and n not in changed]
    assert len(other) == 3  # p1, p2 of the long one and the short conversation's page
    assert "index.html" in changed


def test_a_changed_contact_name_rerenders_that_conversation_only(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(5) + conversation(5, "+4930111"))
    site.build()
    before = snapshot(tmp_path)
    names = {"+4930111": "Carla <b>"}
    SiteBuilder(tmp_path, zone=UTC, zone_name="UTC", name_for=names.get).build()
    after = snapshot(tmp_path)
    changed = [n for n in after if n.startswith("c/") and before.get(n) != after[n]]
    assert len(changed) == 1
    assert "Carla &lt;b&gt;" in (tmp_path / changed[0]).read_text()


def test_a_crash_before_the_manifest_hands_those_messages_in_again(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(5))
    site.build()
    fingerprints = {m.fingerprint for m in conversation(5)}
    assert builder(tmp_path).known_fingerprints() == fingerprints
    # Killed after the data of a new message was saved, before its pages and the manifest:
    killed = builder(tmp_path)
    killed.add([Sms("+4917012345", "late", BASE + 10**9, Box.INBOX)])
    assert builder(tmp_path).known_fingerprints() == set()  # so the engine hands all again
    again = builder(tmp_path)
    again.add([*conversation(5), Sms("+4917012345", "late", BASE + 10**9, Box.INBOX)])
    report = again.build()
    assert report.messages == 6  # merged by fingerprint: nothing doubled
    assert len(builder(tmp_path).known_fingerprints()) == 6


def test_attachment_names_are_made_safe() -> None:
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("..\\..\\boot.ini") == "boot.ini"
    # controls and the right-to-left override are dropped
    assert safe_name("a\x00b\x1b[31m\u202eexe.txt") == "ab[31mexe.txt"
    assert safe_name("") == "attachment" and safe_name(None) == "attachment"
    assert safe_name("...") == "attachment"
    long = safe_name("n" * 300 + ".jpeg")
    assert len(long) <= 60 and long.endswith(".jpeg")
    assert download_name("page.html") == "page.html.download"
    assert download_name("x.svg") == "x.svg.download"
    assert download_name("noext") == "noext.download"
    assert download_name("bob.vcf") == "bob.vcf"


def test_pictures_are_known_by_their_bytes_not_their_claimed_type() -> None:
    picture = sniff_picture(png(7, 5))
    assert picture is not None and (picture.kind, picture.width, picture.height) == ("png", 7, 5)
    assert sniff_picture(b"<svg onload=alert(1)>") is None
    assert sniff_picture(b"<html><script>") is None
    gif = sniff_picture(b"GIF89a\x10\x00\x20\x00" + b"\x00" * 10)
    assert gif is not None and (gif.width, gif.height) == (16, 32)
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    jpeg += b"\xff\xc0\x00\x11\x08\x00\x30\x00\x40\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sniffed = sniff_picture(jpeg)
    assert sniffed is not None and (sniffed.kind, sniffed.width, sniffed.height) == (
        "jpeg", 64, 48,
    )  # fmt: skip
    assert sniff_picture(b"\xff\xd8\xff\xe0\x00") is not None  # truncated: shown, no size


def test_a_picture_claiming_to_be_html_and_html_claiming_to_be_a_picture(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(
        [
            Mms(
                BASE,
                Box.INBOX,
                (("+4917", AddressKind.FROM), ("+4915", AddressKind.TO)),
                (
                    MmsPart("image/png", name="x.png", data=b"<script>alert(1)</script>"),
                    MmsPart("text/html", name="y.html", data=png(3, 3)),
                    MmsPart("text/html", name="page.htm", text="<script>alert(1)</script>"),
                ),
            )
        ]
    )
    site.build()
    files = sorted(p.name.split("-", 2)[2] for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == ["page.htm.download", "x.png.download", "y.png"]
    (page,) = (tmp_path / "c").glob("*/p1.html")
    html = page.read_text()
    assert html.count("<img ") == 1 and "y.png" in html.split("<img ", 1)[1].split(">")[0]


def test_restore_into_a_folder_that_is_not_an_archive_is_refused(bed: Bed, tmp_path: Path) -> None:
    tricky_corpus(bed.phone)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"mine")
    result = bed.smsbak("restore", "--to", f"html:{folder}")
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "not empty" in result.stderr and "Fix:" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


def test_a_rerun_after_a_new_backup_changes_only_that_conversation(
    bed: Bed, tmp_path: Path
) -> None:
    tricky_corpus(bed.phone)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    folder = tmp_path / "site"
    first = bed.smsbak("restore", "--to", f"html:{folder}")
    assert first.returncode == 0, first.stderr
    assert "15 messages restored to the HTML archive" in first.stdout
    assert "termux-open" in first.stdout
    before = snapshot(folder)
    bed.phone.add_sms(address="12345", body="Your new code is 999", date=BASE + 90_000, type=1)
    assert bed.smsbak("backup").returncode == 0
    again = bed.smsbak("restore", "--to", f"html:{folder}")
    assert again.returncode == 0, again.stderr
    assert "1 messages restored" in again.stdout and "15  already in the archive" in again.stdout
    after = snapshot(folder)
    changed = sorted(n for n in after if n.startswith("c/") and before.get(n) != after[n])
    unchanged = [n for n in after if n.startswith("c/") and n not in changed]
    assert len(changed) == 1 and len(unchanged) == 5, (changed, unchanged)
    assert "Your new code is 999" in (folder / changed[0]).read_text()
    data = json.loads((folder / "data" / "site.json").read_text())
    assert len(data["conversations"]) == 6
    for mode in (0o700,):
        assert (folder / "data").stat().st_mode & 0o777 == mode


def test_view_builds_the_archive_in_the_data_folder_and_opens_it(bed: Bed) -> None:
    tricky_corpus(bed.phone)
    bed.phone.add_call(number="+4930999", date=BASE, type=1, duration=3)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    asked = len(bed.phone.calls("termux-contact-list")), len(bed.phone.calls("getprop"))
    result = bed.smsbak("view")
    assert result.returncode == 0, result.stderr
    # the SMS, the calls and the final render ask the phone for names and zone once
    now = len(bed.phone.calls("termux-contact-list")), len(bed.phone.calls("getprop"))
    assert (now[0] - asked[0], now[1] - asked[1]) == (1, 1)
    index = bed.home / "archive" / "index.html"
    assert index.is_file() and f"The archive: {index}" in result.stdout
    (opened,) = bed.phone.calls("termux-open")
    assert opened["argv"] == [str(index)]
    assert "Opened with termux-open" in result.stdout
    assert (bed.home / "archive" / "calls" / "p1.html").is_file()
    assert "15 messages restored" in result.stdout and "1 calls restored" in result.stdout
    again = bed.smsbak("view", "--no-open")
    assert again.returncode == 0, again.stderr
    assert "0 messages restored" in again.stdout
    assert len(bed.phone.calls("termux-open")) == 1


def test_view_without_a_call_log_label_warns_and_still_opens(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, call_log=False, reader="termux")
    tricky_corpus(bed.phone)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    # calls on again, but none in Gmail
    bed.configure(quota_units_per_minute=15_000_000, reader="termux")
    result = bed.smsbak("view")
    assert result.returncode == 0, result.stderr
    assert "Warning: there is no label (folder) 'Call log' in Gmail" in result.stderr
    assert len(bed.phone.calls("termux-open")) == 1


@pytest.mark.parametrize("target", ["html:", "html"])
def test_html_target_needs_a_folder(bed: Bed, target: str) -> None:
    result = bed.smsbak("restore", "--to", target)
    assert result.returncode == ExitCode.USAGE
    assert "html:FOLDER" in result.stderr


def test_a_new_conversation_rewrites_only_the_search_files_of_its_words(tmp_path: Path) -> None:
    site = builder(tmp_path)
    site.add(conversation(300) + conversation(30, "+4930111"))
    site.build()
    before = snapshot(tmp_path)
    later = builder(tmp_path)
    later.add([Sms("+4940222", "quixotic zebra", BASE + 10**9, Box.INBOX)])
    later.build()
    after = snapshot(tmp_path)
    shards = sorted(n for n in after if n.startswith("search/w/") and before.get(n) != after[n])
    assert shards == ["search/w/7175.js", "search/w/7a65.js"]  # "qu", "ze"
    assert not [n for n in before if n.startswith("c/") and before[n] != after[n]]


def test_off_the_phone_view_opens_the_desktop_browser(tmp_path: Path) -> None:
    """No termux-open on PATH: Python's webbrowser, which honours $BROWSER."""
    import subprocess
    import sys

    record = tmp_path / "opened.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(f'#!/bin/sh\necho "$1" > {record}\n')
    fake.chmod(0o755)
    page = tmp_path / "index.html"
    page.write_text("<p>x</p>")
    code = (
        "import sys; from pathlib import Path; from smsbak.app import open_in_browser; "
        "print(open_in_browser(Path(sys.argv[1]), 10))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(page)],
        env={"PATH": "/usr/bin:/bin", "BROWSER": str(fake), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "browser"
    assert record.read_text().strip() == page.as_uri()
