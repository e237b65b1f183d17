"""Attachment files of the archive: safe names, what is shown inline, picture sizes.

Attachment names and types come from other people's phones, so neither is trusted:
the name is reduced to a harmless file name, and a picture is shown inline only when
its own bytes say it is a PNG, JPEG, GIF or WebP (never SVG, whose scripts a browser
runs). Everything else is a download whose file name ends in an extension browsers do
not render, so opening it from file:// cannot run anything inside the archive.
Sizes come from the file headers, read in pure Python (no Pillow on Termux), so pages
reserve the picture's space and the browser scales the full image by CSS.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass

MAX_NAME = 60
INERT_EXTENSIONS = frozenset(
    {
        "vcf", "vcard", "ics", "txt", "pdf", "amr", "3gp", "3gpp", "3g2", "mp3", "m4a",
        "aac", "ogg", "oga", "opus", "wav", "mp4", "m4v", "webm", "mov", "zip",
    }
)  # fmt: skip
"""Kept as they are: a browser plays, shows as text or downloads them, never runs them."""
DOWNLOAD_SUFFIX = ".download"
"""Appended to every other name (.html, .svg, .js, no extension ...): browsers offer
such a file as a download instead of rendering it."""

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]+')


@dataclass(frozen=True)
class Picture:
    kind: str  # "png", "jpeg", "gif", "webp"
    width: int | None
    height: int | None


def safe_name(name: str | None, fallback: str = "attachment") -> str:
    """A file name with no directory, control, reserved or invisible characters,
    no leading dot, at most MAX_NAME characters, the extension kept."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    text = _UNSAFE.sub("_", text).strip(" ._")
    text = re.sub(r"\.{2,}", ".", text)
    if not text:
        text = fallback
    if len(text) > MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        ext = ext[:10] if dot and stem else ""
        text = (text if not ext else stem)[: MAX_NAME - len(ext) - 1].rstrip(" ._")
        text = f"{text}.{ext}" if ext else text
    return text


def download_name(name: str) -> str:
    """``name`` as stored on disk: inert extensions kept, anything else made a download."""
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return name if ext in INERT_EXTENSIONS else name + DOWNLOAD_SUFFIX


def sniff_picture(data: bytes) -> Picture | None:
    """The picture these bytes are, by their own header, or None (shown as a file)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            if data[12:16] == b"IHDR":
                width, height = struct.unpack(">II", data[16:24])
                return Picture("png", *_sane(width, height))
            return Picture("png", None, None)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return Picture("gif", *_sane(width, height))
        if data.startswith(b"\xff\xd8\xff"):
            return Picture("jpeg", *_jpeg_size(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return Picture("webp", *_webp_size(data))
    except struct.error:
        return None
    return None


def _sane(width: int, height: int) -> tuple[int | None, int | None]:
    if 0 < width <= 65535 and 0 < height <= 65535:
        return width, height
    return None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None, None
        marker = data[index + 1]
        if marker == 0xFF:
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return _sane(width, height)
        if length < 2:
            return None, None
        index += 2 + length
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return _sane(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return _sane((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _sane(width, height)
    return None, None
