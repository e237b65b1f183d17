"""Android notifications through termux-notification: quiet status, loud only when needed.

Always with ``-c``: without it the tool waits three seconds for stdin. A
notification that cannot be shown is logged, never fatal: the backup matters
more than telling about it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

STATUS_ID = "smsbak-status"
ALERT_ID = "smsbak-alert"
TIMEOUT = 15.0


class Notifier:
    def __init__(self, enabled: bool = True, timeout: float = TIMEOUT) -> None:
        self.enabled = enabled
        self.timeout = timeout
        self._last_status: str | None = None
        self._alerting: tuple[str, str] | None = ("", "")  # unknown at start: clear once

    def _run(self, tool: str, args: Sequence[str]) -> None:
        if not self.enabled:
            return
        path = shutil.which(tool)
        if path is None:
            log.info("%s is not installed; notifications are off", tool)
            self.enabled = False
            return
        try:
            subprocess.run(
                [path, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            log.warning("could not show a notification: %s", error)

    def status(self, text: str) -> None:
        """The ongoing, silent line: last and next backup. Repeats are not re-sent."""
        if text == self._last_status:
            return
        self._last_status = text
        self._run(
            "termux-notification",
            [
                "--id",
                STATUS_ID,
                "-t",
                "smsbak",
                "-c",
                text,
                "--ongoing",
                "--alert-once",
                "--priority",
                "low",
            ],
        )

    def alert(self, title: str, text: str) -> None:
        """Something needs the person (login, permission); the same alert is not repeated."""
        if self._alerting == (title, text):
            return
        self._alerting = (title, text)
        self._run(
            "termux-notification",
            ["--id", ALERT_ID, "-t", title, "-c", text, "--priority", "high", "--alert-once"],
        )

    def clear_alert(self) -> None:
        """After a success. The first call always clears: an alert may be left over
        from before a restart."""
        if self._alerting is not None:
            self._alerting = None
            self._run("termux-notification-remove", [ALERT_ID])

    def remove_status(self) -> None:
        self._last_status = None
        self._run("termux-notification-remove", [STATUS_ID])
