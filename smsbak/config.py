"""Settings: documented defaults, overridden by ``config.toml``, then by the environment.

No configuration file is needed: with only a token present every command runs
on the defaults below. Each effective value remembers where it came from so
``smsbak config show`` (and error messages) can say so.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from smsbak.errors import UsageError
from smsbak.paths import Paths

GMAIL_QUOTA_UNITS_PER_MINUTE = 15_000
GMAIL_BATCH_LIMIT = 50


@dataclass(frozen=True)
class Settings:
    """Effective settings. Field docs double as the reference in README.md."""

    destination: str = "gmail"
    """Where backups go: "gmail" (the Gmail API), "imap" (any mailbox, app password) or
    "maildir:PATH" (a local Maildir). The state is kept per destination and label."""
    label: str = "SMS"
    """Gmail label that SMS go under (SMS Backup+ used the same default)."""
    lookback_hours: float = 24.0
    """How far behind the newest backed-up message an incremental scan still looks,
    to pick up late deliveries that arrive with an older date."""
    page_size: int = 1000
    """Messages per termux-sms-list call; each call costs 0.5 to 3 s on a phone."""
    termux_timeout: float = 60.0
    """Seconds before a Termux:API call counts as hanging (the app is missing or asleep)."""
    gmail_api: str = ""
    """Base URL of the Gmail API; empty means Google. Plain http only to loopback."""
    quota_units_per_minute: int = GMAIL_QUOTA_UNITS_PER_MINUTE
    """Gmail's per-user quota that uploads are paced to. Google does not raise it;
    only test emulators differ."""
    batch_size: int = GMAIL_BATCH_LIMIT
    """Inserts per batch request, at most 50 (Gmail refuses more)."""
    backup_every: str = "2h"
    """How often `smsbak daemon` (and `smsbak schedule`) back up: 30m, 2h, 1d."""
    watch_every: str = "5m"
    """How often the daemon asks for the newest SMS to back up soon after one
    arrives; "off" to disable. One small termux-sms-list call each time."""
    watch_delay: str = "1m"
    """How long after a new message is seen the daemon backs up (lets bursts settle)."""
    wifi_only: bool = False
    """Back up in the background only on Wi-Fi (termux-wifi-connectioninfo)."""
    min_battery: int = 0
    """Skip background backups below this battery percentage unless charging; 0 = off."""
    reader: str = "auto"
    """How SMS are read: "termux" (Termux:API: received and sent, whole seconds),
    "shizuku" or "root" (every box, exact times, SIM), or "auto": the best that answers."""
    call_log: bool = True
    """Back up the call log too (termux-call-log needs the Call logs permission)."""
    call_label: str = "Call log"
    """Gmail label for calls (SMS Backup+ used the same default)."""
    notifications: bool = True
    """Show smsbak's status and problems as Android notifications (termux-notification)."""
    imap_host: str = ""
    """IMAP server name (imap.gmail.com, imap.mail.me.com, imap.fastmail.com ...)."""
    imap_port: int = 0
    """IMAP port; 0 = the usual one for imap_security: 993 for "tls", 143 otherwise."""
    imap_user: str = ""
    """IMAP login name, usually the email address."""
    imap_security: str = "tls"
    """"tls" (implicit TLS, port 993), "starttls" (port 143, upgraded before the login)
    or "plain" (only to this machine: 127.0.0.1/localhost)."""
    imap_ca_file: str = ""
    """PEM file of a private CA that signed a self-hosted server's certificate; empty =
    the system's trusted CAs."""
    imap_connections: int = 4
    """Parallel IMAP connections for uploads (the provider's limit is shared with your
    other mail apps: Gmail allows about 10 to 15 per account)."""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each value came from: "default", the config file's path, or an env variable."""


ENV_OVERRIDES = {"gmail_api": "SMSBAK_GMAIL_API", "destination": "SMSBAK_DESTINATION"}
DESTINATION_KINDS = ("gmail", "imap", "maildir")
IMAP_MAX_CONNECTIONS = 15  # Gmail's documented ceiling per account; more only gets refused


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``1d`` (and ``10s``, for tests) to seconds."""
    match = DURATION.match(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(
            f"not a duration: {text!r}", "write it like 30m, 2h or 1d (s, m, h, d units)"
        )
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _duration(value: Any) -> str | None:
    try:
        parse_duration(value)
    except UsageError:
        return "must be a duration like 30m, 2h or 1d"
    return None


def _duration_or_off(value: Any) -> str | None:
    return None if value == "off" else _duration(value)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _reader(value: Any) -> str | None:
    if value not in ("auto", "termux", "shizuku", "root"):
        return 'must be "auto", "termux", "shizuku" or "root"'
    return None


def _percentage(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        return "must be a whole number from 0 to 100"
    return None


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return "must be a positive number"
    return None


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "must be a positive whole number"
    return None


def _label(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip() or any(ord(c) < 32 for c in value):
        return "must be a non-empty label name without control characters"
    return None


def _destination(value: Any) -> str | None:
    if not isinstance(value, str):
        return 'must be "gmail", "imap" or "maildir:PATH"'
    kind, colon, path = value.partition(":")
    if kind == "maildir" and colon and path.strip() and not any(ord(c) < 32 for c in path):
        return None
    if kind == "maildir":
        return 'needs the folder: "maildir:PATH", e.g. "maildir:~/storage/shared/smsbak"'
    if value in ("gmail", "imap"):
        return None
    return 'must be "gmail", "imap" or "maildir:PATH"'


def _batch_size(value: Any) -> str | None:
    problem = _positive_int(value)
    if problem is None and value > GMAIL_BATCH_LIMIT:
        return f"must be at most {GMAIL_BATCH_LIMIT} (Gmail refuses larger batches)"
    return problem


def _api_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a URL string"
    if value:
        try:
            check_api_url(value)
        except UsageError as error:
            return error.message
    return None


def _host(value: Any) -> str | None:
    if not isinstance(value, str) or any(c.isspace() or ord(c) < 32 for c in value):
        return "must be a host name without spaces"
    return None


def _port(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        return "must be a port number from 1 to 65535 (0 = the default for imap_security)"
    return None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or any(ord(c) < 32 for c in value):
        return "must be a string without control characters"
    return None


def _imap_security(value: Any) -> str | None:
    if value not in ("tls", "starttls", "plain"):
        return 'must be "tls", "starttls" or "plain"'
    return None


def _imap_connections(value: Any) -> str | None:
    problem = _positive_int(value)
    if problem is None and value > IMAP_MAX_CONNECTIONS:
        return f"must be at most {IMAP_MAX_CONNECTIONS} (providers refuse more per account)"
    return problem


VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "destination": _destination,
    "label": _label,
    "lookback_hours": _positive_number,
    "page_size": _positive_int,
    "termux_timeout": _positive_number,
    "gmail_api": _api_url,
    "quota_units_per_minute": _positive_int,
    "batch_size": _batch_size,
    "backup_every": _duration,
    "watch_every": _duration_or_off,
    "watch_delay": _duration,
    "wifi_only": _boolean,
    "min_battery": _percentage,
    "notifications": _boolean,
    "call_log": _boolean,
    "reader": _reader,
    "call_label": _label,
    "imap_host": _host,
    "imap_port": _port,
    "imap_user": _text,
    "imap_security": _imap_security,
    "imap_ca_file": _text,
    "imap_connections": _imap_connections,
}


def is_loopback_host(host: str) -> bool:
    """True only for this machine: ``localhost`` or a loopback IP literal.

    A prefix test such as ``127.`` would also let ``127.evil.example`` (a DNS name
    anyone can point anywhere) receive bearer tokens over plain http.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str) -> str:
    """Accept https anywhere, plain http only to this machine (tokens travel in it)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = is_loopback_host(host)
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and loopback:
        return url.rstrip("/")
    if parts.scheme == "http":
        raise UsageError(
            f"refusing plain http to {host or url!r}: OAuth tokens would travel unencrypted",
            "use https, or http only to 127.0.0.1/localhost (a local emulator)",
        )
    raise UsageError(f"not an http(s) URL: {url!r}", "write it like https://gmail.googleapis.com")


def load_settings(paths: Paths, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then config.toml, then environment; every problem reported at once."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {f.name: "default" for f in fields(Settings) if f.name != "sources"}
    problems: list[str] = []
    config_file = paths.config_file
    if config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UsageError(
                f"cannot read {config_file}: {error}", "fix the file or delete it to use defaults"
            ) from error
        for key, value in data.items():
            if key not in VALIDATORS:
                problems.append(f"{key}: unknown setting")
                continue
            values[key] = value
            sources[key] = str(config_file)
    for key, variable in ENV_OVERRIDES.items():
        if env.get(variable):
            values[key] = env[variable]
            sources[key] = f"${variable}"
    for key, value in values.items():
        problem = VALIDATORS[key](value)
        if problem:
            problems.append(f"{key} = {value!r} ({sources[key]}): {problem}")
    if (
        not problems
        and values.get("imap_security") == "plain"
        and values.get("imap_host")
        and not is_loopback_host(str(values["imap_host"]).lower())
    ):
        problems.append(
            f'imap_security = "plain" ({sources["imap_security"]}): refused for '
            f"{values['imap_host']!r}: the password and messages would travel unencrypted; "
            'use "tls" or "starttls" ("plain" only to 127.0.0.1/localhost)'
        )
    if problems:
        raise UsageError(
            "invalid settings:\n  " + "\n  ".join(problems),
            f"fix them in {config_file} (see README.md, Configuration)",
        )
    if values.get("gmail_api"):
        values["gmail_api"] = check_api_url(values["gmail_api"])
    for key in ("lookback_hours", "termux_timeout"):
        if key in values:
            values[key] = float(values[key])
    return Settings(**values, sources=sources)
