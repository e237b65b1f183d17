"""``--to html:DIR``: the restore target that builds the offline HTML archive.

A thin adapter between the restore engine and :mod:`smsbak.archive_site`. What the
site already shows counts as "already there", so a re-run hands over only new
messages; the builder then re-renders only the conversations they belong to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, tzinfo
from pathlib import Path

from smsbak.archive_site import SiteBuilder
from smsbak.errors import UsageError
from smsbak.ports import TargetCapabilities


class HtmlTarget:
    """Writes SMS, MMS and (with --calls) the call log into the archive at ``root``."""


    def __init__(
        self,
        root: Path,
        *,
        zone: Callable[[], tuple[tzinfo, str]],
        name_for: Callable[[], Callable[[str], str | None]] = lambda: lambda _: None,
        own_numbers: Iterable[str] = (),
        calls: bool = False,
    ) -> None:
        self.root = root
        self.calls = calls
        self._zone = zone
        self._name_for = name_for
        self._own_numbers = list(own_numbers)
        self._builder: SiteBuilder | None = None

    @property
    def description(self) -> str:
        return f"the HTML archive {self.root}"

    @property
    def capabilities(self) -> TargetCapabilities:
        return TargetCapabilities(sms=True, mms=True, calls=True, existing_in="in the archive")

    def builder(self) -> SiteBuilder:
        if self._builder is None:
            zone, name = self._zone()
            self._builder = SiteBuilder(
                self.root,
                zone=zone,
                zone_name=name,
                name_for=self._name_for(),
                own_numbers=self._own_numbers,
            )
        return self._builder

    def existing_fingerprints(self) -> set[str] | None:
        check_folder(self.root)
        return self.builder().known_fingerprints(calls=self.calls)

    def prepare(self) -> None:
        check_folder(self.root)

    def write(
        self,
        messages: Sequence[object],
        *,
        on_written: Callable[[Sequence[object]], None],
        on_rejected: Callable[[object, str], None],
    ) -> None:
        builder = self.builder()
        try:
            builder.add(messages)  # type: ignore[arg-type]
            builder.build()
        except OSError as error:
            raise UsageError(
                f"cannot write the archive in {self.root}: {error.strerror or error}",
                "check free space and that the folder is writable; running again is safe",
            ) from error
        on_written(messages)

    def finish(self) -> None:
        pass

    def next_steps(self) -> list[str]:
        index = self.root / "index.html"
        return [
            f"Open {index} in a browser: on the phone `termux-open {index}` "
            "(or `smsbak view`), or copy the folder to a computer.",
            "The archive holds your messages: keep it out of folders other apps can read, "
            "or delete it when done.",
        ]


def check_folder(root: Path) -> None:
    """Refuse a folder that holds something other than an archive: nothing is mixed in."""
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"--to html: {root} is a file, not a folder", "give a folder name, like html:~/sms-site"
        )
    if not root.parent.is_dir():
        raise UsageError(
            f"the folder {root.parent} does not exist", "create it or choose another path"
        )
    site = SiteBuilder(root, zone=UTC, zone_name="")
    if root.is_dir() and any(root.iterdir()) and not site.is_site():
        raise UsageError(
            f"{root} is not empty and holds no smsbak archive",
            "choose a new or empty folder (the archive adds many files), or the folder of an "
            "earlier archive to update it",
        )
