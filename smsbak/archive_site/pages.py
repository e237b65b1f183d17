"""The HTML of the archive: every page a small, static, self-contained file.

Every value from a message (text, names, numbers, file names) goes through
``escape``; pages carry no inline script or style, and a Content-Security-Policy
that allows only the site's own script, style and pictures and no network at all,
so even a mistake here could not make a message run code or phone home.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Any

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'none'; font-src 'none'; object-src 'none'; "
    "frame-src 'none'; base-uri 'none'; form-action 'none'"
)
CALL_TYPES = {
    1: "Incoming",
    2: "Outgoing",
    3: "Missed",
    4: "Voicemail",
    5: "Rejected",
    6: "Blocked",
}


def e(value: object) -> str:
    return escape(str(value), quote=True)


def head(title: str, root: str, *, script: bool = False) -> str:
    scripts = f'<script src="{root}static/site.js" defer></script>\n' if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="{root}static/site.css">\n'
        f"{scripts}</head>\n"
    )


def local(ms: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, zone)


def day_label(moment: datetime) -> str:
    return f"{moment:%A}, {moment.day} {moment:%B %Y}"


def short_date(ms: int, zone: tzinfo) -> str:
    return f"{local(ms, zone):%Y-%m-%d}"


def stamp(ms: int, zone: tzinfo) -> str:
    return f"{local(ms, zone):%Y-%m-%d %H:%M}"


def size_text(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1_000_000:.1f} MB"


@dataclass(frozen=True)
class ConversationSummary:
    cid: str
    title: str
    members: tuple[str, ...]
    group: bool
    count: int
    first_ms: int
    last_ms: int
    pages: int


def pager(page: int, pages: int, link: str) -> str:
    parts = ['<nav class="pager">']
    if page > 1:
        parts.append(f'<a rel="prev" href="{link.format(page - 1)}">← Older</a>')
    if page < pages:
        parts.append(f'<a rel="next" href="{link.format(page + 1)}">Newer →</a>')
    parts.append("</nav>\n")
    return "".join(parts)


def conversation_page(
    summary: ConversationSummary,
    messages: Sequence[dict[str, Any]],
    *,
    first_index: int,
    page: int,
    pages: int,
    zone: tzinfo,
    name_of: dict[str, str],
) -> str:
    """One page of a conversation: the messages ``first_index`` on, oldest first."""
    root = "../../"
    members = ""
    if summary.group:
        members = '<p class="members">Group: ' + e(", ".join(summary.members)) + "</p>"
    out = [
        head(summary.title, root),
        '<body class="conversation">\n<header class="bar">',
        f'<a class="back" href="{root}index.html">← All conversations</a>',
        f"<h1>{e(summary.title)}</h1>{members}</header>\n",
        pager(page, pages, "p{}.html"),
        '<main class="chat">\n',
    ]
    day = None
    for offset, message in enumerate(messages):
        moment = local(message["t"], zone)
        if moment.date() != day:
            day = moment.date()
            out.append(f'<h2 class="day">{e(day_label(moment))}</h2>\n')
        side = "out" if message["o"] else "in"
        out.append(f'<div class="m {side}" id="m{first_index + offset}">')
        if summary.group and not message["o"] and message.get("a"):
            who = name_of.get(message["a"], message["a"])
            out.append(f'<div class="who">{e(who)}</div>')
        if message.get("s"):
            out.append(f'<div class="subject">{e(message["s"])}</div>')
        if message.get("b"):
            out.append(f'<div class="b">{e(message["b"])}</div>')
        for item in message.get("x", ()):
            out.append(attachment(item, root))
        kind = " · MMS" if message.get("k") == "mms" else ""
        out.append(f'<time datetime="{moment.isoformat()}">{moment:%H:%M}{kind}</time></div>\n')
    out += ["</main>\n", pager(page, pages, "p{}.html"), "</body></html>\n"]
    return "".join(out)


def attachment(item: dict[str, Any], root: str) -> str:
    href = e(root + item["p"])
    name = e(item["n"])
    if item["k"] == "img":
        size = ""
        if item.get("w") and item.get("h"):
            size = f' width="{int(item["w"])}" height="{int(item["h"])}"'
        return (
            f'<a class="pic" href="{href}"><img src="{href}" alt="{name}"{size} '
            'loading="lazy" decoding="async"></a>'
        )
    return (
        f'<a class="file" href="{href}" download="{name}">📎 {name} '
        f'<span class="size">({e(size_text(int(item["z"])))})</span></a>'
    )


def index_page(
    summaries: Iterable[ConversationSummary],
    *,
    zone: tzinfo,
    messages: int,
    calls: int,
    call_pages: int,
) -> str:
    rows = []
    count = 0
    for summary in summaries:
        count += 1
        badge = '<span class="badge">group</span> ' if summary.group else ""
        plural = "s" if summary.count != 1 else ""
        rows.append(
            f'<li class="conv{" group" if summary.group else ""}" data-id="{summary.cid}">'
            f'<a href="c/{summary.cid}/p{summary.pages}.html">'
            f'<span class="name">{badge}{e(summary.title)}</span>'
            f'<span class="count">{summary.count} message{plural}</span>'
            f'<span class="dates">{short_date(summary.first_ms, zone)} – '
            f"{short_date(summary.last_ms, zone)}</span></a></li>\n"
        )
    call_link = (
        f'<p class="calls"><a href="calls/p{call_pages}.html">Call log ({calls} '
        f"call{'s' if calls != 1 else ''})</a></p>\n"
        if calls
        else ""
    )
    return "".join(
        [
            head("Messages", "", script=True),
            '<body class="index">\n<header class="bar"><h1>Messages</h1>',
            f'<p class="sub">{count} conversations · {messages} messages · '
            "made by smsbak from your backup; nothing here uses the network</p>\n",
            '<input type="search" id="q" placeholder="Search every message" '
            'autocomplete="off" aria-label="Search every message">\n',
            '<div id="status" aria-live="polite"></div><ol id="results"></ol></header>\n',
            call_link,
            '<ol class="convs">\n',
            *rows,
            "</ol>\n</body></html>\n",
        ]
    )


def duration_text(seconds: int) -> str:
    minutes, secs = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def calls_page(
    calls: Sequence[dict[str, Any]], *, page: int, pages: int, zone: tzinfo, name_of: dict[str, str]
) -> str:
    """One page of the call log, newest first (pages are numbered from the oldest)."""
    root = "../"
    rows = []
    for call in reversed(calls):
        number = call["n"]
        rows.append(
            f'<tr class="call t{int(call["y"])}"><td>{e(stamp(call["t"], zone))}</td>'
            f"<td>{e(CALL_TYPES.get(int(call['y']), 'Other'))}</td>"
            f"<td>{e(duration_text(int(call['d'])))}</td>"
            f"<td>{e(number)}</td><td>{e(name_of.get(number, ''))}</td></tr>\n"
        )
    nav = ['<nav class="pager">']
    if page < pages:
        nav.append(f'<a rel="prev" href="p{page + 1}.html">← Newer</a>')
    if page > 1:
        nav.append(f'<a rel="next" href="p{page - 1}.html">Older →</a>')
    nav.append("</nav>\n")
    return "".join(
        [
            head("Call log", root),
            '<body class="calls">\n<header class="bar">',
            f'<a class="back" href="{root}index.html">← All conversations</a>',
            "<h1>Call log</h1></header>\n",
            *nav,
            '<table class="calls"><thead><tr><th>When</th><th>Type</th><th>Duration</th>'
            "<th>Number</th><th>Name</th></tr></thead><tbody>\n",
            *rows,
            "</tbody></table>\n",
            *nav,
            "</body></html>\n",
        ]
    )
