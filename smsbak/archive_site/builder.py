"""Builds and updates the archive site in a folder, from decoded records.

What the site shows is kept beside it, one JSON file per conversation
(``data/c/ID.json``) plus the call log (``data/calls.json``), so a later run adds
only its new records and re-renders only the conversations whose data, title or
zone changed; every file is written only when its bytes differ, so untouched pages
keep their time stamps. ``data/site.json`` is written last and records what each
page was rendered from: after a crash the next run re-renders what is missing.

Memory holds one conversation at a time (and a bounded buffer of incoming
records); attachment bytes go to disk as soon as they arrive; the search index is
sorted through spool files on disk, so memory stays flat in the number of messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from importlib import resources
from pathlib import Path
from typing import Any

from smsbak.archive_site import pages, search
from smsbak.archive_site.files import download_name, safe_name, sniff_picture
from smsbak.mime import INSERT_ADDRESS_TOKEN, conversation_key, is_smil, mms_participants
from smsbak.model import AddressKind, Call, Mms, MmsPart, Sms

RENDER_VERSION = 1
PAGE_MESSAGES = 200
PAGE_BYTES = 150_000
"""A page ends after this many messages or about this many bytes of text, whichever
comes first: a conversation of 20,000 messages opens as fast as one of 20."""
CALLS_PER_PAGE = 500
BUFFER_RECORDS = 5000
SPOOL_BUCKETS = 64
MARKER = "data/site.json"

Record = Sms | Mms | Call


@dataclass
class BuildReport:
    conversations: int = 0
    messages: int = 0
    calls: int = 0
    conversations_rendered: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    files_removed: int = 0


class SiteBuilder:
    """The archive in ``root``. ``name_for`` gives a contact's name for an address."""

    def __init__(
        self,
        root: Path,
        *,
        zone: tzinfo,
        zone_name: str,
        name_for: Callable[[str], str | None] = lambda _: None,
        own_numbers: Iterable[str] = (),
    ) -> None:
        self.root = root
        self.zone = zone
        self.zone_name = zone_name
        self.name_for = name_for
        self.own_numbers = sorted(set(own_numbers))
        self._buffer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._heads: dict[str, dict[str, Any]] = {}
        self._calls: list[dict[str, Any]] = []
        self._buffered = 0
        self.report = BuildReport()

    # --- what is there --------------------------------------------------------------

    def is_site(self) -> bool:
        return (self.root / MARKER).is_file()

    def known_fingerprints(self, calls: bool = False) -> set[str]:
        """Fingerprints of what the site shows: only of conversations whose pages were
        rendered from their current data (after a crash the rest is handed in again)."""
        manifest = self._manifest()
        known: set[str] = set()
        if calls:
            data = self.root / "data" / "calls.json"
            entry = manifest.get("calls") or {}
            if data.is_file() and entry.get("data") == _sha(data.read_bytes()):
                known.update(c["f"] for c in json.loads(data.read_bytes())["calls"])
            return known
        for cid, entry in manifest.get("conversations", {}).items():
            path = self._data(cid)
            with contextlib.suppress(FileNotFoundError):
                raw = path.read_bytes()
                if entry.get("data") == _sha(raw):
                    known.update(m["f"] for m in json.loads(raw)["messages"])
        return known

    # --- taking records in ------------------------------------------------------------

    def add(self, records: Sequence[Record]) -> None:
        self._ensure(self.root)
        self._learn_own_numbers(records)
        for record in records:
            if isinstance(record, Call):
                self._calls.append(
                    {
                        "f": record.fingerprint,
                        "t": record.date_ms,
                        "d": record.duration_s,
                        "y": int(record.type),
                        "n": record.number,
                    }
                )
                continue
            key, addresses = self._conversation(record)
            cid = _sha(key.encode("utf-8", "surrogatepass"))[:16]
            self._heads.setdefault(
                cid, {"key": key, "addresses": addresses, "group": key.startswith("g:")}
            )
            self._buffer[cid].append(self._entry(record, cid))
            self._buffered += 1
            if self._buffered >= BUFFER_RECORDS:
                self._flush()
        self._flush()

    def _learn_own_numbers(self, records: Sequence[Record]) -> None:
        """The phone's own numbers, which received group MMS list among their recipients
        and which must not make a group of a one-to-one MMS. Certain cases only: the one
        recipient of a received MMS, and the real-number sender of a sent one. Kept in
        data/own.json so later runs put the same MMS into the same conversations."""
        path = self.root / "data" / "own.json"
        try:
            stored = set(json.loads(path.read_bytes()))
        except (FileNotFoundError, ValueError):
            stored = set()
        learned = set(self.own_numbers) | stored
        for record in records:
            if not isinstance(record, Mms):
                continue
            if record.box.is_incoming:
                others = {a for a, kind in record.addresses if kind is not AddressKind.FROM} - {
                    INSERT_ADDRESS_TOKEN,
                    record.sender,
                }
                if len(others) == 1:
                    learned.update(others)
            elif record.sender and record.sender != INSERT_ADDRESS_TOKEN:
                learned.add(record.sender)
        self.own_numbers = sorted(learned)
        if learned != stored:
            _put(path, _json(self.own_numbers))

    def _conversation(self, record: Sms | Mms) -> tuple[str, list[str]]:
        if isinstance(record, Sms):
            return "p:" + conversation_key(record.address), [record.address]
        people = mms_participants(record, self.own_numbers)
        if len(people) > 1:
            keys = sorted(conversation_key(p) for p in people)
            return "g:" + ",".join(keys), people
        if people:
            return "p:" + conversation_key(people[0]), people
        return "p:", [""]

    def _entry(self, record: Sms | Mms, cid: str) -> dict[str, Any]:
        outgoing = not record.box.is_incoming
        if isinstance(record, Sms):
            return {"f": record.fingerprint, "t": record.date_ms, "o": outgoing, "b": record.body}
        texts: list[str] = []
        files: list[dict[str, Any]] = []
        for number, part in enumerate(record.parts):
            if is_smil(part):
                continue
            kind = part.content_type.split(";", 1)[0].strip().lower()
            if kind == "text/plain" and part.data is None:
                texts.append(part.text or "")
                continue
            files.append(self._attachment(record, cid, number, part))
        entry: dict[str, Any] = {
            "f": record.fingerprint,
            "t": record.date_ms,
            "o": outgoing,
            "k": "mms",
            "b": "\n".join(t for t in texts if t),
            "x": files,
        }
        sender = record.sender
        if not outgoing and sender and sender != INSERT_ADDRESS_TOKEN:
            entry["a"] = sender
        if record.subject:
            entry["s"] = record.subject
        return entry

    def _attachment(self, mms: Mms, cid: str, number: int, part: MmsPart) -> dict[str, Any]:
        data = part.data
        if data is None:
            data = (part.text or "").encode("utf-8", "surrogatepass")
        picture = sniff_picture(data)
        name = safe_name(part.name or part.content_location)
        if picture is not None:
            stem = name.rpartition(".")[0] if "." in name else name
            stored = f"{stem or 'picture'}.{'jpg' if picture.kind == 'jpeg' else picture.kind}"
        else:
            stored = download_name(name)
        relative = f"a/{cid}/{mms.fingerprint[:12]}-{number}-{stored}"
        _put(self.root / relative, data)
        item: dict[str, Any] = {"n": name, "p": relative, "z": len(data), "c": part.content_type}
        if picture is not None:
            item.update(k="img", w=picture.width, h=picture.height)
        else:
            item["k"] = "file"
        return item

    def _flush(self) -> None:
        for cid, entries in self._buffer.items():
            path = self._data(cid)
            try:
                data = json.loads(path.read_bytes())
            except FileNotFoundError:
                data = {**self._heads[cid], "messages": []}
            merged = {m["f"]: m for m in data["messages"]}
            for entry in entries:
                merged[entry["f"]] = entry
            data["messages"] = sorted(merged.values(), key=lambda m: (m["t"], m["f"]))
            _put(path, _json(data))
        self._buffer.clear()
        self._buffered = 0
        if self._calls:
            path = self.root / "data" / "calls.json"
            try:
                old = json.loads(path.read_bytes())["calls"]
            except FileNotFoundError:
                old = []
            merged = {c["f"]: c for c in old}
            merged.update((c["f"], c) for c in self._calls)
            calls = sorted(merged.values(), key=lambda c: (c["t"], c["f"]))
            _put(path, _json({"calls": calls}))
            self._calls = []

    # --- rendering --------------------------------------------------------------------

    def build(self) -> BuildReport:
        """Render what changed: pages, index, call log, search index, static files."""
        report = self.report = BuildReport()
        self._ensure(self.root)
        manifest = self._manifest()
        old_convs: dict[str, Any] = manifest.get("conversations", {})
        same_style = (
            manifest.get("zone") == self.zone_name and manifest.get("render") == RENDER_VERSION
        )
        self._static()
        summaries: list[pages.ConversationSummary] = []
        new_convs: dict[str, Any] = {}
        changed = not same_style
        spool_dir = Path(tempfile.mkdtemp(prefix=".search-", dir=self._ensure(self.root / "data")))
        try:
            buckets = [
                (spool_dir / f"{i}.txt").open("w", encoding="utf-8", errors="surrogatepass")
                for i in range(SPOOL_BUCKETS)
            ]
            try:
                directory = self.root / "data" / "c"
                paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
                # Numbers in the search index stay with their conversation across runs,
                # so a new conversation does not rewrite every shard.
                numbers: dict[str, int] = dict(manifest.get("numbers", {}))
                conv_rows: list[list[Any] | None] = []
                for path in paths:
                    raw = path.read_bytes()
                    data = json.loads(raw)
                    cid = path.stem
                    number = numbers.setdefault(cid, max(numbers.values(), default=-1) + 1)
                    summary, starts = self._summary(cid, data)
                    digest = _sha(_json([_sha(raw), summary.title, summary.members]))
                    old = old_convs.get(cid, {})
                    if not same_style or old.get("render") != digest:
                        self._render_conversation(summary, data["messages"], starts, old)
                        changed = True
                        report.conversations_rendered += 1
                    new_convs[cid] = {
                        "data": _sha(raw),
                        "render": digest,
                        "pages": summary.pages,
                    }
                    summaries.append(summary)
                    report.messages += summary.count
                    conv_rows += [None] * (number + 1 - len(conv_rows))
                    conv_rows[number] = [cid, summary.title, summary.last_ms, starts]
                    for index, message in enumerate(data["messages"]):
                        text = " ".join(
                            [message.get("s", ""), message.get("b", "")]
                            + [x["n"] for x in message.get("x", ())]
                        )
                        for line in search.spool_lines(number, index, text):
                            shard = line.split("\t", 1)[0]
                            buckets[zlib.crc32(shard.encode()) % SPOOL_BUCKETS].write(line)
            finally:
                for bucket in buckets:
                    bucket.close()
            for cid in set(old_convs) - set(new_convs):
                self._remove_tree(self.root / "c" / cid)
                changed = True
            if changed or not (self.root / "search" / "convs.js").is_file():
                self._search_index(spool_dir, conv_rows)
        finally:
            shutil.rmtree(spool_dir, ignore_errors=True)
        calls_entry = self._render_calls(manifest.get("calls") or {}, same_style)
        summaries.sort(key=lambda s: (s.last_ms, s.cid), reverse=True)
        report.conversations = len(summaries)
        self._write(
            "index.html",
            pages.index_page(
                summaries,
                zone=self.zone,
                messages=report.messages,
                calls=report.calls,
                call_pages=int(calls_entry.get("pages", 0)),
            ),
        )
        self._write(
            MARKER,
            _json(
                {
                    "format": "smsbak-html-archive",
                    "render": RENDER_VERSION,
                    "zone": self.zone_name,
                    "conversations": new_convs,
                    "numbers": {cid: n for cid, n in numbers.items() if cid in new_convs},
                    "calls": calls_entry,
                }
            ),
        )
        return report

    def _summary(
        self, cid: str, data: dict[str, Any]
    ) -> tuple[pages.ConversationSummary, list[int]]:
        messages = data["messages"]
        members = tuple(self._name(a) for a in data["addresses"])
        title = ", ".join(members) if members else "(no number)"
        starts = page_starts(messages)
        summary = pages.ConversationSummary(
            cid=cid,
            title=title,
            members=members,
            group=bool(data.get("group")),
            count=len(messages),
            first_ms=messages[0]["t"] if messages else 0,
            last_ms=messages[-1]["t"] if messages else 0,
            pages=len(starts),
        )
        return summary, starts

    def _name(self, address: str) -> str:
        if not address:
            return "(no number)"
        return self.name_for(address) or address

    def _render_conversation(
        self,
        summary: pages.ConversationSummary,
        messages: list[dict[str, Any]],
        starts: list[int],
        old: dict[str, Any],
    ) -> None:
        names: dict[str, str] = {}
        for message in messages:
            author = message.get("a")
            if author and author not in names:
                names[author] = self._name(author)
        bounds = [*starts, len(messages)]
        for page in range(1, len(starts) + 1):
            first, end = bounds[page - 1], bounds[page]
            chunk = messages[first:end]
            html = pages.conversation_page(
                summary,
                chunk,
                first_index=first,
                page=page,
                pages=len(starts),
                zone=self.zone,
                name_of=names,
            )
            self._write(f"c/{summary.cid}/p{page}.html", html)
            texts = [
                [
                    first + offset,
                    pages.stamp(m["t"], self.zone),
                    1 if m["o"] else 0,
                    names.get(m.get("a", ""), ""),
                    search.snippet(m.get("b") or " ".join(x["n"] for x in m.get("x", ()))),
                ]
                for offset, m in enumerate(chunk)
            ]
            key = f"{summary.cid}-{page}"
            self._write(f"search/t/{key}.js", _script("texts", key, texts))
        for page in range(len(starts) + 1, int(old.get("pages", 0)) + 1):
            self._remove(f"c/{summary.cid}/p{page}.html")
            self._remove(f"search/t/{summary.cid}-{page}.js")

    def _search_index(self, spool_dir: Path, conv_rows: list[list[Any] | None]) -> None:
        written: set[str] = set()
        for bucket in range(SPOOL_BUCKETS):
            shards: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
            with (spool_dir / f"{bucket}.txt").open(encoding="utf-8", errors="surrogatepass") as f:
                for line in f:
                    shard, word, ref = line.rstrip("\n").split("\t")
                    shards[shard][word].append(ref)
            for shard, table in shards.items():
                name = f"search/w/{shard}.js"
                self._write(name, _script("words", shard, table))
                written.add(name)
        directory = self.root / "search" / "w"
        for path in directory.glob("*.js") if directory.is_dir() else ():
            if f"search/w/{path.name}" not in written:
                self._remove(f"search/w/{path.name}")
        self._write("search/convs.js", _script("conversations", "", conv_rows))

    def _render_calls(self, old: dict[str, Any], same_style: bool) -> dict[str, Any]:
        path = self.root / "data" / "calls.json"
        if not path.is_file():
            return {}
        raw = path.read_bytes()
        calls = json.loads(raw)["calls"]
        self.report.calls = len(calls)
        digest = _sha(raw)
        count = max(1, -(-len(calls) // CALLS_PER_PAGE))
        entry = {"data": digest, "pages": count}
        if same_style and old.get("data") == digest and (self.root / "calls" / "p1.html").is_file():
            return entry
        names: dict[str, str] = {}
        for call in calls:
            if call["n"] not in names:
                names[call["n"]] = self.name_for(call["n"]) or ""
        for page in range(1, count + 1):
            chunk = calls[(page - 1) * CALLS_PER_PAGE : page * CALLS_PER_PAGE]
            html = pages.calls_page(chunk, page=page, pages=count, zone=self.zone, name_of=names)
            self._write(f"calls/p{page}.html", html)
        for page in range(count + 1, int(old.get("pages", 0)) + 1):
            self._remove(f"calls/p{page}.html")
        return entry

    def _static(self) -> None:
        for name in ("site.css", "site.js"):
            data = resources.files("smsbak.archive_site").joinpath("static", name).read_bytes()
            self._write(f"static/{name}", data)

    # --- files --------------------------------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / MARKER).read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _data(self, cid: str) -> Path:
        return self.root / "data" / "c" / f"{cid}.json"

    def _ensure(self, directory: Path) -> Path:
        """Owner-only, as smsbak's other folders: the archive is every message in clear.
        (Where chmod does not work, as on shared storage, the folder stays as it is.)"""
        existed = directory.is_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not existed:
            with contextlib.suppress(OSError):
                directory.chmod(0o700)
        return directory

    def _write(self, relative: str, content: str | bytes) -> None:
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
        if _put(self.root / relative, data):
            self.report.files_written += 1
        else:
            self.report.files_unchanged += 1

    def _remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / relative).unlink()
            self.report.files_removed += 1

    def _remove_tree(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path)
            self.report.files_removed += 1


def page_starts(messages: list[dict[str, Any]]) -> list[int]:
    """Where each page begins, filled from the oldest message: new messages change
    only the last page (and add new ones), never the pages before it."""
    starts = [0]
    count = weight = 0
    for index, message in enumerate(messages):
        size = 300 + len(message.get("b") or "") + 200 * len(message.get("x", ()))
        if count and (count >= PAGE_MESSAGES or weight + size > PAGE_BYTES):
            starts.append(index)
            count = weight = 0
        count += 1
        weight += size
    return starts


def _script(kind: str, key: str, data: object) -> str:
    """A data file the site's search code loads with <script src> (file:// forbids fetch)."""
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return f"smsbakSearch.{kind}({json.dumps(key)},{payload});\n"


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically, owner-only, unless the file already holds exactly it."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True
