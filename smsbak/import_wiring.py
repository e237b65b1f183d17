"""Wiring for ``smsbak import``: the lock, the state, the destination and the engine.

The destination, the state and the account come from the same wiring as a backup
(:mod:`smsbak.app`), so an import lands in the place a phone backup uses and the two
never upload one message twice. Before the first upload into a place, what its folder
already holds is adopted exactly as before a first backup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsbak.adopt import before_first_backup
from smsbak.config import Settings
from smsbak.importer import ImportEngine, ImportProgress, ImportReport, Labels
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.ports import Destination
from smsbak.report import StreamReport
from smsbak.sources.archive import ArchiveSource
from smsbak.store import StateStore


def open_destination(paths: Paths, settings: Settings) -> Destination:
    """The configured destination, as a backup opens it (a seam for in-process tests)."""
    from smsbak.app import open_destination as open_configured

    return open_configured(paths, settings)


def _zone(store: StateStore) -> tzinfo:
    """The phone's zone as the phone backup remembered it, else this machine's."""
    from smsbak.app import PHONE_ZONE_KEY

    name = store.get_meta(PHONE_ZONE_KEY)
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def run_import(
    paths: Paths,
    settings: Settings,
    files: Sequence[Path],
    *,
    dry_run: bool = False,
    upload_anyway: bool = False,
    progress: Callable[[ImportProgress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ImportReport:
    """Check every file, then import them all under the run lock."""
    from smsbak.app import account_address, adoption_reader, open_store

    source = ArchiveSource(files)  # every file checked before anything is opened
    with RunLock(paths.lock_file), open_store(paths, settings) as store:
        destination = open_destination(paths, settings)
        readers: list[Destination] = []

        def adopt(label: str, place: str) -> list[str]:
            scratch = StreamReport()
            before_first_backup(
                store,
                place,
                label,
                scratch,
                destination=destination,
                reader=lambda: adoption_reader(paths, settings, destination, readers),
                upload_anyway=upload_anyway,
                should_stop=should_stop,
            )
            return scratch.notes + scratch.warnings

        try:
            engine = ImportEngine(
                destination,
                store,
                account=account_address(destination.identity),
                zone=_zone(store),
                labels=Labels(messages=settings.label, calls=settings.call_label),
                prepare_place=adopt,
            )
            return engine.run(source, dry_run=dry_run, progress=progress, should_stop=should_stop)
        finally:
            for reader in readers:
                reader.close()
            destination.close()
