"""Wiring for ``smsbak import``: the lock, the state, the destination and the engine.

PLACEHOLDER, to be reconciled by the lead when the branches meet: the destination
comes from ``smsbak.app.open_destination(paths, settings)``, which the ``spine`` branch
adds. Until that is merged, ``open_destination`` below takes it from there when it
exists and otherwise opens the one destination it can without it: a Maildir named by
``SMSBAK_DESTINATION=maildir:PATH`` when ``smsbak.destinations.maildir`` is present.
Once spine's function is in, this module keeps only ``run_import`` (or moves it into
``smsbak.app``), and ``open_destination`` goes.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsbak.config import Settings
from smsbak.errors import UsageError
from smsbak.importer import ImportEngine, ImportProgress, ImportReport, Labels
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.ports import Destination
from smsbak.sources.archive import ArchiveSource
from smsbak.store import StateStore

PHONE_ZONE_KEY = "phone_zone"
"""Where the phone backup remembers the phone's zone (``smsbak.app``)."""


def open_destination(paths: Paths, settings: Settings) -> Destination:
    """PLACEHOLDER (see the module docstring): spine's wiring when present."""
    app = importlib.import_module("smsbak.app")
    real = getattr(app, "open_destination", None)
    if real is not None:
        return cast(Destination, real(paths, settings))
    chosen = os.environ.get("SMSBAK_DESTINATION", "")
    if chosen.startswith("maildir:") and chosen != "maildir:":
        try:
            maildir = importlib.import_module("smsbak.destinations.maildir")
        except ImportError:
            maildir = None
        if maildir is not None:
            destination: Any = maildir.MaildirDestination(Path(chosen[len("maildir:") :]))
            return cast(Destination, destination)
    raise UsageError(
        "this build of smsbak cannot open a destination for import yet",
        hint="Set SMSBAK_DESTINATION=maildir:PATH once the Maildir destination is installed.",
    )


def account_of(identity: str) -> str:
    """The mailbox address a destination identity names, for the emails' From/To
    (as the phone backup writes the Gmail account); "" when it names none."""
    kind, _, rest = identity.partition(":")
    if kind == "gmail":
        return rest
    if kind == "imap":
        user = rest.rsplit("@", 1)[0] if rest.count("@") > 1 else rest.rsplit(":", 1)[0]
        return user if "@" in user else ""
    return ""


def _zone(store: StateStore) -> tzinfo:
    """The phone's zone as the phone backup remembered it, else this machine's."""
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
    progress: Callable[[ImportProgress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
    destination_factory: Callable[[Paths, Settings], Destination] | None = None,
) -> ImportReport:
    """Check every file, then import them all under the run lock. ``destination_factory``
    defaults to :func:`open_destination`."""
    source = ArchiveSource(files)  # every file checked before anything is opened
    opener = destination_factory or open_destination
    with RunLock(paths.lock_file), StateStore(paths.state_db) as store:
        destination = opener(paths, settings)
        try:
            engine = ImportEngine(
                destination,
                store,
                account=account_of(destination.identity),
                zone=_zone(store),
                labels=Labels(messages=settings.label, calls=settings.call_label),
            )
            return engine.run(source, dry_run=dry_run, progress=progress, should_stop=should_stop)
        finally:
            destination.close()
