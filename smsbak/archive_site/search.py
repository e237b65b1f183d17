"""The search index: words of every message, split into small script files.

Pages opened from file:// may not fetch() anything, but they may load scripts of
their own folder, so every index file is a script that hands its data to the
site's search code (``site.js``). Words are sharded by their first two characters:
a query loads only the shards of its own words, however large the archive. A result
names a conversation and a message number; the page's text for showing the
result comes from one more small script per conversation page.

Tokenising here and in ``site.js`` must agree: NFKC, lower case, runs of letters,
digits and underscores (Python's ``\\w``, JavaScript's ``[\\p{L}\\p{N}_]``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_WORD = re.compile(r"\w+")
PREFIX = 2
MAX_WORD = 40
"""Longer runs (links, codes) are cut: nobody types more of one word."""


def words(text: str) -> set[str]:
    normal = unicodedata.normalize("NFKC", text).lower()
    return {word[:MAX_WORD] for word in _WORD.findall(normal)}


def shard_key(word: str) -> str:
    """The hex UTF-8 of the word's first characters: a file name from any script."""
    return word[:PREFIX].encode("utf-8", "surrogatepass").hex()


def snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def spool_lines(conversation: int, index: int, text: str) -> Iterator[str]:
    """One line per word of one message: ``shard<TAB>word<TAB>conversation.index``."""
    for word in sorted(words(text)):
        yield f"{shard_key(word)}\t{word}\t{conversation}.{index}\n"
