"""Narrow the readers' mixed record streams to one kind, lazily (memory tests iterate)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from smsbak.model import Mms, Sms


def sms_only(records: Iterable[object]) -> Iterator[Sms]:
    for record in records:
        if isinstance(record, Sms):
            yield record


def mms_only(records: Iterable[object]) -> Iterator[Mms]:
    for record in records:
        if isinstance(record, Mms):
            yield record


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A fresh folder for one example of a property test, in RAM where there is one.

    The writers end every file with an fsync (a crash must not leave half an archive);
    hundreds of examples each paying for a disk flush cost seconds of waiting and prove
    nothing more about the format, so they write to tmpfs (/dev/shm) when the machine
    has it, and to the usual temporary folder otherwise.
    """
    ram = Path("/dev/shm")
    if ram.is_dir() and os.access(ram, os.W_OK | os.X_OK):
        return tempfile.TemporaryDirectory(dir=ram, prefix="smsbak-test-")
    return tempfile.TemporaryDirectory(prefix="smsbak-test-")
