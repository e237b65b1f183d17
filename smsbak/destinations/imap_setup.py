"""`smsbak auth --imap` and doctor's IMAP check: log in once to prove the settings work,
then keep the password owner-only and the settings in config.toml.

config.toml is edited line by line rather than re-serialized, so the person's other
keys, comments and order survive (the standard library reads TOML but cannot write it).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from smsbak.config import Settings, load_settings
from smsbak.destinations.imap import (
    ImapAccount,
    ImapDestination,
    check_security,
    connect,
    effective_port,
    password_file,
)
from smsbak.errors import SmsbakError, UsageError
from smsbak.paths import Paths, ensure_private_dir, private_file_atomically

WHOLE_MAILBOX_WARNING = (
    "An app password opens your whole mailbox (read, send, delete), not only the SMS "
    "folder: it is stored owner-only in {path}; revoke it at your provider if the phone "
    "is lost."
)

KNOWN_HOSTS = {
    "gmail.com": "imap.gmail.com",
    "googlemail.com": "imap.gmail.com",
    "icloud.com": "imap.mail.me.com",
    "me.com": "imap.mail.me.com",
    "mac.com": "imap.mail.me.com",
    "fastmail.com": "imap.fastmail.com",
    "yahoo.com": "imap.mail.yahoo.com",
    "gmx.net": "imap.gmx.net",
    "gmx.de": "imap.gmx.net",
    "gmx.com": "imap.gmx.com",
}


def suggested_host(user: str) -> str | None:
    """The usual IMAP server for a well-known address, offered as the default."""
    domain = user.rpartition("@")[2].lower()
    return KNOWN_HOSTS.get(domain)


@dataclass(frozen=True)
class ImapSetup:
    """What `smsbak auth --imap` did, for the CLI to say."""

    identity: str
    config_file: str
    password_file: str
    capabilities: frozenset[bytes]


def set_up_imap(
    paths: Paths,
    *,
    host: str,
    user: str,
    password: str,
    security: str = "tls",
    port: int = 0,
    ca_file: str = "",
) -> ImapSetup:
    """Log in with these values; only when that works, store the password and settings."""
    if not host.strip() or not user.strip():
        raise UsageError("the IMAP host and user must not be empty", "pass --host and --user")
    if not password:
        raise UsageError("no IMAP password given", "type it when asked, or pipe one line on stdin")
    if security not in ("tls", "starttls", "plain"):
        raise UsageError(f"unknown IMAP security {security!r}", "use tls, starttls or plain")
    host, user = host.strip(), user.strip()
    check_security(host, security)
    if ca_file:
        ca_path = Path(ca_file).expanduser().resolve()
        if not ca_path.is_file():
            raise UsageError(f"no CA file at {ca_path}", "pass the CA's PEM file to --ca-file")
        ca_file = str(ca_path)
    account = ImapAccount(
        host=host, port=effective_port(security, port), user=user, password=password,
        security=security, ca_file=ca_file, connections=1,
    )  # fmt: skip
    client = connect(account)  # raises AuthError / ImapError with the fix
    try:
        capabilities = frozenset(client.capabilities())
    finally:
        try:
            client.logout()
        except Exception:  # the login was proven; a slow goodbye does not matter
            client.shutdown()
    settings: dict[str, object] = {
        "destination": "imap",
        "imap_host": host,
        "imap_user": user,
        "imap_security": security,
        "imap_port": port,
        "imap_ca_file": ca_file,
    }
    ensure_private_dir(paths.config_dir)
    path = password_file(paths)
    with private_file_atomically(path, "w") as handle:
        handle.write(password + "\n")
    write_config_keys(paths, settings)
    load_settings(paths, environ={})  # the file still reads: prove it before we say done
    destination = ImapDestination(account)
    return ImapSetup(
        identity=destination.identity,
        config_file=str(paths.config_file),
        password_file=str(path),
        capabilities=capabilities,
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def write_config_keys(paths: Paths, values: dict[str, object]) -> None:
    """Set top-level keys in config.toml, keeping every other line as it was."""
    path = paths.config_file
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(
            f"cannot update {path}: it is not valid TOML ({error})",
            "fix the file (or move it away) and run `smsbak auth --imap` again",
        ) from error
    lines = text.splitlines()
    first_table = next(
        (n for n, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines)
    )
    remaining = dict(values)
    for n in range(first_table):
        match = re.match(r"\s*([A-Za-z0-9_-]+)\s*=", lines[n])
        if match and match.group(1) in remaining:
            key = match.group(1)
            lines[n] = f"{key} = {_toml_value(remaining.pop(key))}"
    added = [f"{key} = {_toml_value(value)}" for key, value in remaining.items()]
    lines[first_table:first_table] = added
    new_text = "\n".join(lines) + "\n"
    tomllib.loads(new_text)
    ensure_private_dir(path.parent)
    with private_file_atomically(path, "w") as handle:
        handle.write(new_text)


# --- doctor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapCheck:
    name: str
    result: str  # "ok", "warn", "fail" as in smsbak.doctor
    detail: str
    fix: str | None = None


def doctor_checks(paths: Paths, settings: Settings) -> list[ImapCheck]:
    """Login, folders and capabilities; never raises (doctor shows every check)."""
    from smsbak.destinations.imap import account_from_settings

    try:
        account = account_from_settings(paths, settings)
        destination = ImapDestination(replace(account, connections=1), retry_delays=())
    except SmsbakError as error:
        return [ImapCheck("IMAP login", "fail", error.message, error.hint)]
    checks: list[ImapCheck] = []
    try:
        capabilities = destination.server_capabilities()
        checks.append(ImapCheck("IMAP login", "ok", f"{destination.description}, logged in"))
        missing = [c for c in ("UIDPLUS",) if c.encode() not in capabilities]
        gmail = " (Gmail: merges a second copy of a Message-ID)" if destination.is_gmail else ""
        if missing:
            checks.append(ImapCheck(
                "IMAP capabilities", "warn",
                "no UIDPLUS: every upload costs one more search" + gmail,
            ))  # fmt: skip
        else:
            checks.append(ImapCheck("IMAP capabilities", "ok", "UIDPLUS" + gmail))
        for label in [settings.label] + ([settings.call_label] if settings.call_log else []):
            if destination.find_folder(label) is None:
                checks.append(ImapCheck(
                    "IMAP folder", "warn", f"{label!r} does not exist yet",
                    "the first `smsbak backup` creates it"
                    + ("; in Gmail tick \"Show in IMAP\" for an existing label"
                       if destination.is_gmail else ""),
                ))  # fmt: skip
            else:
                count = destination.count(label)
                checks.append(ImapCheck("IMAP folder", "ok", f"{label!r} holds {count}"))
    except SmsbakError as error:
        checks.append(ImapCheck("IMAP login", "fail", error.message, error.hint))
    finally:
        destination.close()
    return checks
