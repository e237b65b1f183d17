"""The HTML archive end to end: backup -> Gmail emulator -> `smsbak restore --to html:DIR`,
then opened from file:// in real headless Chromium (DevTools protocol).

One site and one browser for the whole module; each test opens its own page.
Screenshots of the index and of a conversation go to $SMSBAK_TEST_ARTIFACTS
(default test-artifacts/).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsbak.mime import encode_mms
from smsbak.model import AddressKind, Box, Mms, MmsPart
from tests.browser import Browser, Page, artifacts_dir
from tests.conftest import ACCOUNT, Bed, new_bed, scaled_emulator
from tests.fakes.archive_corpus import png
from tests.fakes.gmail_emulator import GmailEmulator
from tests.system_tools import require
from tests.test_backup_e2e import BASE, tricky_corpus
from tests.test_restore_e2e import restore_login

SCRIPT_BODY = "<script>alert(1)</script>"
IMG_BODY = "<img src=x onerror=\"document.title='pwned';alert(2)\">"
SEARCH_WORD = "Zeppelinfahrt"


PICTURE_MMS = Mms(
    date_ms=BASE + 100_000,
    box=Box.INBOX,
    addresses=(("+491701111111", AddressKind.FROM), ("+4915550000", AddressKind.TO)),
    parts=(
        MmsPart("text/plain", text="look at this"),
        MmsPart("image/png", name="../../../etc/passwd\x07.png", data=png(64, 48)),
        MmsPart("image/svg+xml", name="evil.svg", data=b"<svg onload='alert(3)'/>"),
    ),
)
GROUP_MMS = Mms(
    date_ms=BASE + 200_000,
    box=Box.INBOX,
    addresses=(
        ("+4917022", AddressKind.FROM),
        ("+4915550000", AddressKind.TO),  # the user, as the picture MMS showed
        ("+4917033", AddressKind.TO),
    ),
    parts=(MmsPart("text/plain", text="group hello from 022"),),
)


def upload_mms(emulator: GmailEmulator, mms: Mms) -> None:
    from zoneinfo import ZoneInfo

    encoded = encode_mms(
        mms,
        account=ACCOUNT,
        contact_names={},
        zone=ZoneInfo("Europe/Berlin"),
        backup_time=datetime.now(UTC),
    )
    emulator.add_message(encoded.raw, ["SMS"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[tuple[Bed, Path]]:
    """``browser`` first: Chromium starts while the site is built."""
    base = tmp_path_factory.mktemp("html")
    with scaled_emulator() as emulator:
        # Built once through the CLI in this process: what is tested is the site in the
        # browser, not smsbak's start-up (the emulator and the fake phone stay real).
        bed = new_bed(base, emulator, in_process=True)
        tricky_corpus(bed.phone)
        with bed.phone.batch():
            bed.phone.add_sms(address="+4930999", body=SCRIPT_BODY, date=BASE + 30_000, type=1)
            bed.phone.add_sms(address="+4930999", body=IMG_BODY, date=BASE + 31_000, type=1)
            bed.phone.add_sms(
                address="+4930999", body=f"Die {SEARCH_WORD} war toll", date=BASE + 32_000, type=2
            )
            bed.phone.add_call(number="+491701111111", date=BASE + 5_000, type=3, duration=0)
            bed.phone.add_call(number="+4930999", date=BASE + 6_000, type=2, duration=125)
        assert bed.smsbak("backup").returncode == 0
        upload_mms(emulator, PICTURE_MMS)
        upload_mms(emulator, GROUP_MMS)
        (bed.home / "token.json").unlink()
        restore_login(bed)
        folder = base / "archive"
        result = bed.smsbak("restore", "--to", f"html:{folder}")
        assert result.returncode == 0, result.stderr
        calls = bed.smsbak("restore", "--calls", "--to", f"html:{folder}")
        assert calls.returncode == 0, calls.stderr
        yield bed, folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # CI installs chromium (SMSBAK_REQUIRE_CHROMIUM): there a missing browser is a
    # failure, never a silent skip.
    path = require("chromium", "SMSBAK_REQUIRE_CHROMIUM", "apt-get install chromium")
    chromium = Browser(path)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.page()
    yield opened
    opened.close()


def conversation_url(folder: Path, title_html: str) -> str:
    """The newest page of the conversation whose index entry shows ``title_html``."""
    index = (folder / "index.html").read_text()
    marker = f'<span class="name">{title_html}</span>'
    before = index[: index.index(marker)]
    href = before[before.rindex('href="') + 6 :].split('"', 1)[0]
    return (folder / href).as_uri()


def test_the_index_lists_every_conversation_of_the_tricky_corpus(
    site: tuple[Bed, Path], page: Page
) -> None:
    _, folder = site
    page.goto((folder / "index.html").as_uri())
    names = page.eval(
        "Array.from(document.querySelectorAll('.conv .name')).map(e => e.textContent)"
    )
    expected = {
        'O\'Brien, "Bob"',  # +491701111111, from the contact book
        "عائشة",
        "+8613800138000",
        "+441234567890",
        "12345",
        "DHL-Info",
        "+4930999",
        "group +4917022, +4917033",  # the group MMS, the user's own number left out
    }
    assert set(names) == expected, names
    assert page.eval("document.querySelector('.conv.group .badge').textContent") == "group"
    dates = page.eval(
        "Array.from(document.querySelectorAll('.conv .dates')).map(e => e.textContent)"
    )
    assert dates == sorted(dates, key=lambda d: d.split(" – ")[1], reverse=True)  # newest first
    assert "Call log (2 calls)" in page.eval("document.querySelector('.calls').textContent")
    page.screenshot(artifacts_dir() / "html-index.png")


def test_a_conversation_shows_its_messages_in_order_on_the_right_sides(
    site: tuple[Bed, Path], page: Page
) -> None:
    _, folder = site
    page.goto(conversation_url(folder, "+441234567890"))
    rows = page.eval(
        """Array.from(document.querySelectorAll('.m')).map(m => {
             const r = m.getBoundingClientRect();
             const main = document.querySelector('.chat').getBoundingClientRect();
             return [m.className, (m.querySelector('.b') || {}).textContent || '',
                     Math.round(r.left - main.left), Math.round(main.right - r.right)];
           })"""
    )
    assert [r[0] for r in rows] == ["m in", "m out", "m in", "m in", "m in", "m out"]
    assert rows[0][1].startswith("long ä€")
    assert rows[1][1] == "windows\nline\nendings\n"
    assert rows[2][1] == "From the beginning\nFrom here too\n>From quoted"
    assert rows[3][1].startswith("Content-Type: text/html")
    for class_name, _, left, right in rows:
        if class_name == "m in":
            assert left == 0 and right > 0  # received: on the left
        else:
            assert right == 0 and left > 0  # sent: on the right
    times = page.eval("Array.from(document.querySelectorAll('.m time')).map(t => t.textContent)")
    assert times[0].startswith("12:00")  # BASE is 12:00 in Europe/Berlin, the phone's zone
    assert page.eval("document.querySelector('.day').textContent") == "Sunday, 1 March 2026"
    page.screenshot(artifacts_dir() / "html-conversation.png")


def test_an_mms_picture_is_displayed_and_an_svg_is_only_a_download(
    site: tuple[Bed, Path], page: Page
) -> None:
    _, folder = site
    page.goto(conversation_url(folder, html.escape('O\'Brien, "Bob"')))
    page.eval("document.querySelector('.pic img').scrollIntoView()")
    size = page.wait_for(
        "(() => { const i = document.querySelector('.pic img');"
        " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null })()"
    )
    assert size == [64, 48]
    src = page.eval("document.querySelector('.pic img').getAttribute('src')")
    assert ".." not in src.replace("../../a/", "") and "passwd" in src and "\x07" not in src
    assert page.eval("document.querySelectorAll('img[src$=\".svg\"], iframe, object').length") == 0
    download = page.eval("document.querySelector('a.file').getAttribute('href')")
    assert download.endswith("evil.svg.download")
    assert page.eval("document.querySelector('a.file').getAttribute('download')") == "evil.svg"
    assert page.dialogs() == []


def test_a_group_message_says_who_wrote_it(site: tuple[Bed, Path], page: Page) -> None:
    _, folder = site
    page.goto(conversation_url(folder, '<span class="badge">group</span> +4917022, +4917033'))
    assert page.eval("document.querySelector('.m .who').textContent") == "+4917022"
    assert page.eval("document.querySelector('.m .b').textContent") == "group hello from 022"


def test_hostile_bodies_show_as_text_and_run_nothing(site: tuple[Bed, Path], page: Page) -> None:
    _, folder = site
    page.goto(conversation_url(folder, "+4930999"))
    bodies = page.eval("Array.from(document.querySelectorAll('.m .b')).map(b => b.textContent)")
    assert SCRIPT_BODY in bodies and IMG_BODY in bodies
    assert page.eval("document.querySelectorAll('.chat script, .chat img').length") == 0
    assert page.eval("document.title") == "+4930999"
    assert page.dialogs() == []


def test_a_search_typed_into_the_box_finds_the_message(site: tuple[Bed, Path], page: Page) -> None:
    _, folder = site
    page.goto((folder / "index.html").as_uri())
    page.type("#q", SEARCH_WORD[:7].lower())  # a prefix, in another case
    found = page.wait_for(
        "Array.from(document.querySelectorAll('#results li')).map(l => l.textContent)"
    )
    assert len(found) == 1 and f"Die {SEARCH_WORD} war toll" in found[0]
    assert "1 message found" in page.eval("document.getElementById('status').textContent")
    href = page.eval("document.querySelector('#results a').href")
    page.goto(href)
    target = page.eval("document.querySelector(':target .b').textContent")
    assert target == f"Die {SEARCH_WORD} war toll"


def test_search_finds_hostile_text_as_text_and_two_words_together(
    site: tuple[Bed, Path], page: Page
) -> None:
    _, folder = site
    page.goto((folder / "index.html").as_uri())
    page.type("#q", "onerror title")
    found = page.wait_for(
        "Array.from(document.querySelectorAll('#results li .text')).map(l => l.textContent)"
    )
    assert found == [IMG_BODY]
    assert page.eval("document.querySelectorAll('#results img, #results script').length") == 0
    assert page.eval("document.title") == "Messages"
    assert page.dialogs() == []


def test_the_call_log_page(site: tuple[Bed, Path], page: Page) -> None:
    _, folder = site
    page.goto((folder / "calls" / "p1.html").as_uri())
    rows = page.eval(
        "Array.from(document.querySelectorAll('tr.call')).map(r =>"
        " Array.from(r.cells).map(c => c.textContent))"
    )
    assert rows == [
        ["2026-03-01 12:00", "Outgoing", "2:05", "+4930999", ""],
        ["2026-03-01 12:00", "Missed", "0:00", "+491701111111", 'O\'Brien, "Bob"'],
    ]


def test_every_page_forbids_inline_scripts_and_the_network(site: tuple[Bed, Path]) -> None:
    _, folder = site
    pages = list(folder.rglob("*.html"))
    assert len(pages) >= 10
    for path in pages:
        text = path.read_text()
        assert "Content-Security-Policy" in text and "connect-src 'none'" in text
        assert "default-src 'none'" in text and "<script>" not in text
        assert "http://" not in text and "https://" not in text
    manifest = json.loads((folder / "data" / "site.json").read_text())
    assert manifest["zone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("世界", "你好，世界。日本語のテキスト"), ("مرحب", "مرحبا، كيف حالك؟ שלום")],
)
def test_search_in_other_scripts(
    site: tuple[Bed, Path], page: Page, query: str, expected: str
) -> None:
    """The browser's tokenizer must cut words exactly as the build's did."""
    _, folder = site
    page.goto((folder / "index.html").as_uri())
    page.type("#q", query)
    found = page.wait_for(
        "Array.from(document.querySelectorAll('#results li .text')).map(l => l.textContent)"
    )
    assert found == [expected]


def test_dark_mode_follows_the_system_and_a_phone_screen_needs_no_sideways_scrolling(
    site: tuple[Bed, Path], page: Page
) -> None:
    _, folder = site
    url = conversation_url(folder, "+441234567890")  # the 800-character line without spaces
    background = "getComputedStyle(document.body).backgroundColor"
    colors = {}
    page.send(  # a common phone: 360 CSS pixels wide
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True},
    )
    for scheme in ("light", "dark"):
        page.send(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        page.goto(url)
        colors[scheme] = page.eval(background)
        # What the phone's screen shows (the whole page is in html-conversation.png).
        page.screenshot(artifacts_dir() / f"html-conversation-phone-{scheme}.png", whole_page=False)
    assert colors["light"] != colors["dark"]
    assert page.eval("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.eval("window.innerWidth") == 360


TOKENIZER_SAMPLES = [
    "Straße STRASSE ﬁnal Ｆｕｌｌ width",
    "İstanbul ıI",
    "مَرْحَبًا بِكُم ٣٤٥",
    "हिन्दी में संदेश",
    "你好，世界。日本語のテキスト",
    "emoji 🧑‍🚀 between𝔸words snake_case x²",
    "Ǆemal ǅ ǆ Ω Ω",
    "a" * 60 + " 𝔸" * 3,
]


def test_the_browser_cuts_words_as_the_build_does(site: tuple[Bed, Path], page: Page) -> None:
    """A word the build indexed must be the word the page looks up, in any script."""
    from smsbak.archive_site import search

    _, folder = site
    page.goto((folder / "index.html").as_uri())
    for text in TOKENIZER_SAMPLES:
        in_browser = page.eval(f"window.smsbakSearch.tokens({json.dumps(text)})")
        built = {(word, search.shard_key(word)) for word in search.words(text)}
        assert {tuple(pair) for pair in in_browser} == built, text
