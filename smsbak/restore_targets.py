"""Where a restore writes: the phone itself, or a file a default-SMS app imports.

``--to phone`` writes through Shizuku or root; ``--to smsie:FILE.zip`` and
``--to xml:FILE.xml`` write files for SMS Import/Export and SMS Backup &
Restore; ``--to html:DIR`` builds the offline HTML archive (smsbak.html_target).
Without ``--to``: the phone when Shizuku or root works, otherwise an SMS
Import/Export archive in the shared Downloads folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from smsbak.errors import UsageError
from smsbak.model import Mms, Sms
from smsbak.ports import TargetCapabilities

FILE_KINDS = {
    "smsie": ("SMS Import / Export archive", ".zip"),
    "xml": ("SMS Backup & Restore file", ".xml"),
}
DEFAULT_SWITCH_BACK = (
    "Afterwards make your usual messaging app the default SMS app again "
    "(Android Settings > Apps > Default apps > SMS app)."
)


@dataclass(frozen=True)
class TargetChoice:
    """What ``--to`` asked for: "phone", or a file kind with its path; None = automatic."""

    kind: str
    path: Path | None = None


CALL_SUFFIXES = {"smsie": ".json", "xml": ".xml"}
"""SMS Import / Export keeps the call log in a separate calls-DATE.json, not in the zip."""


def parse_target(text: str | None, calls: bool = False) -> TargetChoice | None:
    if text is None or text == "auto":
        return None
    if text == "phone":
        return TargetChoice("phone")
    kind, _, location = text.partition(":")
    if kind == "html" and location:
        return TargetChoice("html", Path(location).expanduser())
    if kind in FILE_KINDS and location:
        path = Path(location).expanduser()
        suffix = CALL_SUFFIXES[kind] if calls else FILE_KINDS[kind][1]
        if path.suffix.lower() != suffix:
            raise UsageError(
                f"--to {kind}: wants a {suffix} file name, not {path.name!r}",
                f"write it like --to {kind}:restore{suffix}",
            )
        return TargetChoice(kind, path)
    raise UsageError(
        f"unknown restore target {text!r}",
        "use --to phone, --to smsie:FILE.zip (calls: FILE.json), --to xml:FILE.xml "
        "or --to html:FOLDER",
    )


def default_archive_path(home: Path, now: datetime, calls: bool = False) -> tuple[Path, str | None]:
    """The shared Downloads folder when Termux can reach it (termux-setup-storage)."""
    downloads = home / "storage" / "downloads"
    name = f"calls-{now:%Y-%m-%d}.json" if calls else f"smsbak-restore-{now:%Y%m%d-%H%M%S}.zip"
    if downloads.is_dir():
        return downloads / name, None
    return home / name, (
        "Termux cannot reach the shared Downloads folder: run `termux-setup-storage` and "
        "copy the file there, or run the restore again afterwards"
    )


class FileTarget:
    """A file that appears whole or not at all (owner-only, replaced atomically), written
    as the engine's sequence is read: records stream into the format's writer."""

    def __init__(
        self,
        kind: str,
        path: Path,
        *,
        read_phone: Callable[[], set[str] | None],
        contact_names: Callable[[], dict[str, str]] = dict,
        note: str | None = None,
        calls: bool = False,
    ) -> None:
        self.calls = calls
        # Both archive formats carry MMS with their parts.
        self.capabilities = TargetCapabilities(sms=not calls, mms=not calls, calls=calls)
        self.note = note
        self.kind = kind
        self.path = path
        self.read_phone = read_phone
        self.contact_names = contact_names

    @property
    def description(self) -> str:
        return f"the {FILE_KINDS[self.kind][0]} {self.path}"

    def existing_fingerprints(self) -> set[str] | None:
        return self.read_phone()

    def prepare(self) -> None:
        if not self.path.parent.is_dir():
            raise UsageError(
                f"the folder {self.path.parent} does not exist", "create it or choose another path"
            )

    def write(
        self,
        messages: Sequence[Any],
        *,
        on_written: Callable[[Sequence[Any]], None],
        on_rejected: Callable[[Any, str], None],
    ) -> None:
        names = self.contact_names()
        try:
            if self.calls and self.kind == "xml":
                from smsbak.formats.sbr import write_calls_xml

                write_calls_xml(self.path, messages, contact_names=names)
            elif self.calls:
                from smsbak.formats.smsie import write_calls_json

                write_calls_json(self.path, messages, contact_names=names)
            else:
                from smsbak.formats.sbr import write_message_stream_xml
                from smsbak.formats.smsie import write_message_stream_zip

                # One pass over the sequence, which decodes from the spool as it is
                # read: no list of every message, so memory stays one message deep.
                stream = (m for m in messages if isinstance(m, Sms | Mms))
                if self.kind == "xml":
                    write_message_stream_xml(self.path, stream, contact_names=names)
                else:
                    write_message_stream_zip(self.path, stream, contact_names=names)
        except OSError as error:
            raise UsageError(
                f"cannot write {self.path}: {error.strerror or error}",
                "check free space and that the folder is writable (termux-setup-storage for "
                "Downloads)",
            ) from error
        on_written(messages)

    def finish(self) -> None:
        pass

    def next_steps(self) -> list[str]:
        cleanup = (
            f"Delete {self.path.name} once imported: it holds your messages, and other apps "
            "can read the Downloads folder."
        )
        return [*([self.note] if self.note else []), *self._import_steps(), cleanup]

    def _import_steps(self) -> list[str]:
        if self.calls and self.kind == "xml":
            return [
                f"Open SMS Backup & Restore, choose Restore, pick {self.path.name} "
                f"(in {self.path.parent}) and allow it to write the call log."
            ]
        if self.calls:
            return [
                "Open SMS Import / Export (F-Droid), choose 'Import call log' and pick "
                f"{self.path.name} (in {self.path.parent}). It skips voicemail entries.",
            ]
        if self.kind == "xml":
            return [
                f"Open SMS Backup & Restore, choose Restore, and pick {self.path.name} "
                f"(it is in {self.path.parent}).",
                "The app asks to become the default SMS app while it restores: allow it.",
                DEFAULT_SWITCH_BACK,
            ]
        return [
            "Install SMS Import / Export (F-Droid), open it and allow it to be the default "
            "SMS app when asked (Android lets only the default SMS app write messages).",
            f"Choose 'Import messages' and pick {self.path.name} (in {self.path.parent}).",
            DEFAULT_SWITCH_BACK,
        ]
