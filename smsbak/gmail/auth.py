"""OAuth for a phone: the loopback flow, the token file, and turning grant failures into advice.

The token file is the authorized-user JSON google-auth writes, plus the
account address (needed for the From/To headers), written atomically and
readable by the owner only. Credentials are built by hand rather than with
``from_authorized_user_file`` because that replaces a stored ``token_uri``
with Google's, which would break any non-Google token endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from smsbak.config import check_api_url
from smsbak.errors import AuthError, UsageError
from smsbak.paths import write_private_atomically

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

GMAIL_INSERT = "https://www.googleapis.com/auth/gmail.insert"
GMAIL_LABELS = "https://www.googleapis.com/auth/gmail.labels"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
OPENID = "openid"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
BACKUP_SCOPES = [GMAIL_INSERT, GMAIL_LABELS, OPENID, USERINFO_EMAIL]
"""The least a backup needs: insert and label, and who the account is. It cannot read mail."""

RESTORE_SCOPES = [GMAIL_READONLY, OPENID, USERINFO_EMAIL]
"""Restore reads the archive; kept in its own token file, apart from the backup token."""

REAUTH_HINT = "run `smsbak auth --client-secrets FILE` again to log in"
RESTORE_AUTH_HINT = (
    "restore needs read access to Gmail, kept apart from the backup login: run "
    "`smsbak auth --restore --client-secrets FILE`"
)


@dataclass(frozen=True)
class StoredToken:
    credentials: Credentials
    account: str
    scopes: frozenset[str]


def _parse_expiry(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # google-auth compares expiry with a naive UTC now.
    return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed


def load_token(path: Path, missing_hint: str = REAUTH_HINT) -> StoredToken:
    """Read token.json; a missing or broken file is an authentication problem with a fix."""
    from google.oauth2.credentials import Credentials

    if not path.exists():
        raise AuthError(f"not logged in: {path} does not exist", missing_hint)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("refresh_token", "client_id", "client_secret") if not data.get(k)]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
    except (OSError, ValueError) as error:
        raise AuthError(f"the token file {path} is unusable: {error}", REAUTH_HINT) from error
    token_uri = str(data.get("token_uri") or "https://oauth2.googleapis.com/token")
    scopes = data.get("scopes") or []
    credentials = Credentials(
        token=data.get("token"),
        refresh_token=data["refresh_token"],
        token_uri=token_uri,
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        scopes=scopes,
        expiry=_parse_expiry(data.get("expiry")),
    )
    return StoredToken(
        credentials=credentials,
        account=str(data.get("account") or ""),
        scopes=frozenset(scopes),
    )


def save_token(path: Path, credentials: Credentials, account: str) -> None:
    data = json.loads(credentials.to_json())
    data["account"] = account
    write_private_atomically(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def require_scopes(token: StoredToken, needed: list[str], what: str, hint: str) -> None:
    missing = [scope for scope in needed if scope not in token.scopes]
    if missing:
        raise AuthError(
            f"the saved login does not allow {what} (missing {', '.join(missing)})", hint
        )


def account_from_id_token(id_token: str | None) -> str | None:
    """The email claim of an ID token received straight from the token endpoint.

    OpenID Connect Core 3.1.3.7 allows relying on TLS server validation instead
    of the signature when the token comes directly from the token endpoint.
    """
    if not id_token or id_token.count(".") < 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) and email else None


class _RedirectCatcher(BaseHTTPRequestHandler):
    """Answers the browser's redirect to http://localhost:PORT/?code=... once."""

    server: _LoopbackServer

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.end_headers()
            return
        ok = "code" in query
        body = (
            "smsbak is logged in. You can close this tab and go back to Termux."
            if ok
            else "The login was not completed. Go back to Termux for details."
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.answers.put(self.path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _LoopbackServer(HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectCatcher)
        self.answers: queue.Queue[str] = queue.Queue()


def _read_pasted(stream: IO[str], answers: queue.Queue[str]) -> None:
    for line in stream:
        if line.strip():
            answers.put(line.strip())
            return


def _code_from_answer(answer: str, state: str) -> str:
    """Accept the whole redirect URL (or its query), or a bare code."""
    if "code=" not in answer and "error=" not in answer:
        return answer
    query = parse_qs(urlsplit(answer).query if "?" in answer else answer.lstrip("/?"))
    if "error" in query:
        raise AuthError(
            f"Google refused the login: {query['error'][0]}",
            "run `smsbak auth` again and allow every permission on the consent page",
        )
    if query.get("state", [state])[0] != state:
        raise AuthError(
            "the pasted address belongs to another login attempt (state mismatch)",
            "paste the address from the login this command just started",
        )
    return query["code"][0]


SECRETS_HINT = (
    "download the JSON of a 'Desktop app' OAuth client from Google Cloud Console "
    "(README.md, Google OAuth client setup)"
)


def read_client_secrets(path: Path) -> dict[str, Any]:
    """The client JSON, checked to be a Desktop ("installed") client before any network."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"cannot read {path} as JSON: {error}", SECRETS_HINT) from error
    if not isinstance(data, dict) or not isinstance(data.get("installed"), dict):
        kind = next(iter(data), "unknown") if isinstance(data, dict) and data else "unknown"
        raise UsageError(
            f"{path} is not the JSON of a Desktop app OAuth client (it is of type {kind!r})",
            SECRETS_HINT,
        )
    installed = data["installed"]
    missing = [
        key
        for key in ("client_id", "client_secret", "auth_uri", "token_uri")
        if not isinstance(installed.get(key), str) or not installed.get(key)
    ]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}", SECRETS_HINT)
    return data


def open_in_browser(url: str) -> bool:
    """termux-open-url when it exists (the phone's browser); never fails the login."""
    opener = shutil.which("termux-open-url")
    if opener is None:
        return False
    try:
        subprocess.run([opener, url], timeout=15, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True


def run_login(
    client_secrets: Path,
    token_path: Path,
    scopes: list[str],
    *,
    say: Callable[[str], None],
    stdin: IO[str] | None = None,
    timeout: float = 600.0,
) -> StoredToken:
    """The loopback OAuth flow, with a pasted redirect URL accepted as well."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    flow = InstalledAppFlow.from_client_config(read_client_secrets(client_secrets), scopes=scopes)
    token_uri = str(flow.client_config.get("token_uri", ""))
    check_api_url(token_uri)
    if urlsplit(token_uri).scheme == "http":
        # Only reachable for loopback (checked above): a local test server.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

    server = _LoopbackServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        flow.redirect_uri = f"http://localhost:{server.server_address[1]}/"
        url, state = flow.authorization_url(access_type="offline", prompt="consent")
        say("Open this address in a browser and allow smsbak access:")
        say(url)
        if open_in_browser(url):
            say("(opened in the phone's browser)")
        say(
            "Waiting for the browser. If it runs on another device, paste the address it "
            "ends on (http://localhost:...) here and press Enter."
        )
        stream = stdin if stdin is not None else sys.stdin
        if stream is not None and not stream.closed:
            threading.Thread(
                target=_read_pasted, args=(stream, server.answers), daemon=True
            ).start()
        try:
            answer = server.answers.get(timeout=timeout)
        except queue.Empty:
            raise AuthError(
                f"no answer from the browser within {timeout:g} s", "run `smsbak auth` again"
            ) from None
    finally:
        server.shutdown()
        server.server_close()
    code = _code_from_answer(answer, state)
    try:
        flow.fetch_token(code=code)
    except Exception as error:  # oauthlib raises many unrelated types
        raise AuthError(f"Google did not accept the login: {error}", REAUTH_HINT) from error
    from google.oauth2.credentials import Credentials

    obtained = flow.credentials
    granted_raw = flow.oauth2session.token.get("scope") or scopes
    granted = sorted(granted_raw.split() if isinstance(granted_raw, str) else granted_raw)
    # Record what Google granted (the person may untick boxes), not what was asked.
    credentials = Credentials(
        token=obtained.token,
        refresh_token=obtained.refresh_token,
        token_uri=obtained.token_uri,
        client_id=obtained.client_id,
        client_secret=obtained.client_secret,
        scopes=granted,
        expiry=obtained.expiry,
    )
    account = account_from_id_token(getattr(obtained, "id_token", None))
    if not account:
        raise AuthError(
            "could not learn the account's address (the email permission was not granted)",
            "run `smsbak auth` again and allow every permission",
        )
    stored = StoredToken(credentials=credentials, account=account, scopes=frozenset(granted))
    require_scopes(
        stored,
        [s for s in scopes if s.startswith("https://www.googleapis.com/auth/gmail")],
        "everything smsbak asked for",
        "run `smsbak auth` again and tick every box on the consent page",
    )
    save_token(token_path, credentials, account)
    return stored
