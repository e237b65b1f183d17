"""The 7-bit encodings every smsbak email is built from, and their decoders.

RFC 2047 encoded-words for header text, quoted-printable for MMS text parts,
RFC 2231 for long or non-ASCII file names, percent-encoding for the values smsbak
must carry exactly (controls, lone surrogates), base64 lines for bodies. Nothing
here knows about SMS, calls or MMS: these are the bricks the record codecs share,
so a header written by one codec reads back the same way in every other.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from email.header import decode_header
from urllib.parse import quote, unquote

_ENCODED_WORD_BYTES = 45  # 60 base64 characters: each encoded-word stays under 75
_BODY_LINE = 76
_QUOTABLE_NAME = re.compile(r"[ !#-\[\]-~]{1,60}")  # printable ASCII without " and \
_RFC2231_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_PERCENT_SAFE = "+@/"
_FOLD_WIDTH = 60
_QP_WIDTH = 75  # characters before the soft line break "="
_QP_ESCAPE = re.compile(r"=([0-9A-Fa-f]{2})")


def strip_controls(text: str) -> str:
    """Remove what could end or fold a header line: C0/C1 controls and line separators.

    SMS Backup+ also removed control characters from the address header.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Zl", "Zp"))


def is_plain_header(text: str) -> bool:
    """True when ``text`` survives a header unchanged without any encoding."""
    return (
        0 < len(text) <= 60
        and all(32 <= ord(ch) < 127 for ch in text)
        and text == text.strip()
        and "  " not in text
        and "=?" not in text
    )


def encode_words(text: str) -> str:
    """RFC 2047 base64 encoded-words, split between characters, folded with CRLF SP."""
    words: list[str] = []
    chunk = b""
    for ch in text:
        data = ch.encode("utf-8", "replace")
        if chunk and len(chunk) + len(data) > _ENCODED_WORD_BYTES:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk.decode("utf-8"))
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(word.encode("utf-8")).decode("ascii") + "?="
        for word in words
    )


def header_text(text: str) -> str:
    """A header value for free text: plain when safe, encoded-words otherwise."""
    clean = strip_controls(text)
    return clean if not clean or is_plain_header(clean) else encode_words(clean)


def exact_header_text(text: str) -> str:
    """Free text that must come back exactly: plain when that is safe, else encoded-words."""
    if is_plain_header(text) and strip_controls(text) == text:
        return text
    return encode_words(text)


def decode_header_value(value: str) -> str:
    """Unfold and decode RFC 2047 words; raw UTF-8 (as old mailers wrote) is accepted too."""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value)
    if any("\udc80" <= ch <= "\udcff" for ch in unfolded):
        unfolded = unfolded.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    pieces: list[str] = []
    for part, charset in decode_header(unfolded):
        if isinstance(part, str):
            pieces.append(part)
            continue
        try:
            pieces.append(part.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            pieces.append(part.decode("utf-8", "replace"))
    return "".join(pieces)


def percent_encode(text: str) -> str:
    """Percent-encoded UTF-8 that carries any text exactly, lone surrogates included."""
    return quote(text, safe=_PERCENT_SAFE, encoding="utf-8", errors="surrogatepass")


def percent_decode(text: str) -> str:
    """The exact text ``percent_encode`` was given."""
    return unquote(text, encoding="utf-8", errors="surrogatepass")


def fold_bare(value: str) -> str:
    """Fold a value that has no whitespace of its own; readers drop all whitespace."""
    return "\r\n ".join(value[i : i + _FOLD_WIDTH] for i in range(0, len(value), _FOLD_WIDTH))


def base64_lines(data: bytes) -> str:
    """Base64 in CRLF-separated lines of 76 characters, as MIME bodies must be."""
    encoded = base64.b64encode(data).decode("ascii")
    return "\r\n".join(encoded[i : i + _BODY_LINE] for i in range(0, len(encoded), _BODY_LINE))


def base64_text(text: str) -> str:
    """A text body as base64 lines of its UTF-8: no byte of it can change the email's form."""
    return base64_lines(text.encode("utf-8", "replace"))


def qp_encode(text: str) -> str:
    """UTF-8 quoted-printable that gives back exactly ``text``: LF is a line break, CR is
    ``=0D``, trailing blanks and a line-leading ``F`` or ``.`` are escaped (mbox and SMTP
    would touch them), lines stay within 76 characters."""
    lines: list[str] = []
    for logical in text.encode("utf-8", "replace").split(b"\n"):
        current = ""
        for index, byte in enumerate(logical):
            if byte in (0x20, 0x09) and index == len(logical) - 1:
                token = f"={byte:02X}"
            elif (33 <= byte <= 126 and byte != 0x3D) or byte in (0x20, 0x09):
                token = chr(byte)
            else:
                token = f"={byte:02X}"
            if len(current) + len(token) > _QP_WIDTH:
                lines.append(current + "=")
                current = ""
            if not current and token in ("F", "."):
                token = f"={byte:02X}"
            current += token
        lines.append(current)
    return "\r\n".join(lines)


def qp_decode(encoded: str) -> bytes:
    """Quoted-printable to bytes; a hard line break gives LF whether it was CRLF or LF."""
    out = bytearray()
    lines = re.split(r"\r?\n", encoded)
    for index, line in enumerate(lines):
        line = line.rstrip(" \t")
        soft = line.endswith("=")
        if soft:
            line = line[:-1]
        pos = 0
        for match in _QP_ESCAPE.finditer(line):
            out += line[pos : match.start()].encode("ascii", "surrogateescape")
            out.append(int(match.group(1), 16))
            pos = match.end()
        out += line[pos:].encode("ascii", "surrogateescape")
        if not soft and index < len(lines) - 1:
            out += b"\n"
    return bytes(out)


def quotable_name(name: str) -> bool:
    """A file name that can go into a quoted parameter as it is (else RFC 2231)."""
    return bool(_QUOTABLE_NAME.fullmatch(name)) and name == name.strip() and "=?" not in name


def rfc2231_param(key: str, value: str) -> str:
    """``filename*=utf-8''...``, split into ``filename*0*=`` sections when long."""
    escaped = [chr(b) if b in _RFC2231_SAFE else f"%{b:02X}" for b in value.encode("utf-8")]
    sections: list[str] = []
    current = ""
    for token in escaped:
        if len(current) + len(token) > _FOLD_WIDTH:
            sections.append(current)
            current = ""
        current += token
    sections.append(current)
    prefix = "utf-8''"
    if len(sections) == 1:
        return f"{key}*={prefix}{sections[0]}"
    return ";\r\n ".join(
        f"{key}*{i}*={prefix if i == 0 else ''}{section}" for i, section in enumerate(sections)
    )
