"""The mailbox: labels, and paced batch uploads that never re-send a confirmed part.

Uploads are ``messages.insert`` with ``raw`` bodies, 50 to a batch request.
Each part is answered separately: parts Gmail confirmed are handed to the
caller at once (to be recorded), failed parts are retried alone, after a delay
that grows exponentially with jitter and honours any retry time Gmail gives.
A batch that fails as a whole (connection dropped, outer 5xx) confirmed
nothing, so all its parts go again; Gmail merges any that had in fact arrived
by their Message-ID.
"""

from __future__ import annotations

import base64
import http.client
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any

from smsbak.errors import AuthError, DailyLimitExceeded, GmailError
from smsbak.gmail.auth import REAUTH_HINT
from smsbak.gmail.pacing import INSERT_COST, TokenBucket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = 64.0
LONGEST_WAIT = 900.0
RETRYABLE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}
_RETRY_AFTER_TEXT = re.compile(r"Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)")


@dataclass
class Outgoing:
    """One message to insert; ``key`` lets the caller match answers to its records."""

    key: str
    raw: bytes
    attempts: int = 0


@dataclass(frozen=True)
class Confirmed:
    key: str
    gmail_id: str


@dataclass(frozen=True)
class Rejected:
    key: str
    reason: str


@dataclass(frozen=True)
class PartFailure:
    status: int
    reason: str
    message: str
    retry_after: float | None = None


@dataclass
class UploadStats:
    batches: int = 0
    requests: int = 0
    retried_parts: int = 0
    waited_for_quota: float = 0.0
    waited_for_retry: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)


def _retry_after(headers: Any, message: str) -> float | None:
    value = None
    if headers is not None:
        value = headers.get("retry-after") or headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(str(value))
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    match = _RETRY_AFTER_TEXT.search(message or "")
    if match:
        when = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


def failure_from_http_error(error: Any) -> PartFailure:
    """Status, Google's error reason and any retry time from a googleapiclient HttpError."""
    status = int(getattr(error, "status_code", 0) or getattr(error.resp, "status", 0) or 0)
    reason = ""
    message = str(getattr(error, "reason", "") or "")
    details = getattr(error, "error_details", None)
    if isinstance(details, list) and details and isinstance(details[0], dict):
        reason = str(details[0].get("reason", ""))
        message = str(details[0].get("message", message))
    return PartFailure(
        status=status,
        reason=reason,
        message=message,
        retry_after=_retry_after(getattr(error, "resp", None), message),
    )


def is_retryable(failure: PartFailure) -> bool:
    if failure.status == 429 or failure.status >= 500 or failure.status == 0:
        return True
    return failure.status == 403 and failure.reason in RETRYABLE_REASONS


def _raise_for_fatal(failure: PartFailure) -> None:
    """Failures no retry fixes and that concern every message, not one."""
    if failure.reason == "dailyLimitExceeded":
        when = "after midnight Pacific Time"
        if failure.retry_after:
            retry_at = datetime.now(UTC) + timedelta(seconds=failure.retry_after)
            when = f"after {retry_at:%Y-%m-%d %H:%M} UTC"
        raise DailyLimitExceeded(
            "Gmail's daily limit for this account is used up; what was uploaded is recorded",
            f"run `smsbak backup` again {when} (the daemon retries by itself)",
        )
    if failure.status == 401:
        raise AuthError("Gmail no longer accepts the saved login", REAUTH_HINT)
    if failure.status == 403 and failure.reason in ("insufficientPermissions", "forbidden"):
        raise AuthError(
            f"the saved login may not do this: {failure.message}",
            "run `smsbak auth --client-secrets FILE` again and allow every permission",
        )


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential with full jitter, never shorter than what the server asked for."""
    exponential = min(MAX_BACKOFF, 2.0 ** max(0, attempt - 1))
    delay = exponential * (0.5 + rng.random() / 2)
    return max(delay, retry_after or 0.0)


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
)


class GmailMailbox:
    def __init__(
        self,
        service: Any,
        batch_uri: str,
        bucket: TokenBucket,
        *,
        batch_size: int = 50,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.batch_uri = batch_uri
        self.bucket = bucket
        self.batch_size = batch_size
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stats = UploadStats()

    def _call(self, request: Any, *, conflict_ok: bool = False) -> Any:
        """One ordinary call, with the same retry policy as batch parts.

        With ``conflict_ok`` a 409 answer returns None instead of failing.
        """
        from googleapiclient.errors import HttpError

        attempt = 0
        while True:
            attempt += 1
            try:
                return _translate_auth(request.execute)
            except HttpError as error:
                failure = failure_from_http_error(error)
            except TRANSPORT_ERRORS as error:
                failure = PartFailure(0, "transport", str(error))
            _raise_for_fatal(failure)
            if conflict_ok and failure.status == 409:
                return None
            if not is_retryable(failure) or attempt >= MAX_ATTEMPTS:
                raise GmailError(
                    f"Gmail refused a request: {failure.status} {failure.reason} "
                    f"{failure.message}".strip(),
                    "check the network and try again later",
                )
            self._wait(backoff_delay(attempt, failure.retry_after, self.rng))

    def _wait(self, seconds: float) -> None:
        if seconds > LONGEST_WAIT:
            raise GmailError(
                f"Gmail asks to wait {seconds / 60:.0f} minutes before trying again",
                "nothing was lost; run the backup again later",
            )
        self.stats.waited_for_retry += seconds
        self.sleep(seconds)

    def ensure_label(self, name: str) -> str:
        """The id of label ``name``, created when missing; a creation race is fine."""
        for _ in range(2):
            labels = self._call(self.service.users().labels().list(userId="me"))
            for label in labels.get("labels", []):
                if str(label.get("name", "")).casefold() == name.casefold():
                    return str(label["id"])
            created = self._call(
                self.service.users()
                .labels()
                .create(
                    userId="me",
                    body={
                        "name": name,
                        "labelListVisibility": "labelShow",
                        "messageListVisibility": "show",
                    },
                ),
                conflict_ok=True,
            )
            if created is not None:
                return str(created["id"])
            # 409: someone created it meanwhile; look it up again.
        raise GmailError(f"could not create or find the Gmail label {name!r}")

    def upload(
        self,
        items: Iterable[Outgoing],
        label_id: str,
        *,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Insert every item; report each answer once; raise only on run-ending failures.

        ``on_confirmed`` is called once per batch response with the parts Gmail
        accepted, before anything else is sent, so the caller can commit them.
        """
        source = iter(items)  # consumed lazily: only one batch is encoded at a time
        retry_queue: deque[Outgoing] = deque()
        while not should_stop():
            batch: list[Outgoing] = []
            while retry_queue and len(batch) < self.batch_size:
                batch.append(retry_queue.popleft())
            batch.extend(islice(source, self.batch_size - len(batch)))
            if not batch:
                return
            self.stats.waited_for_quota += self.bucket.acquire(INSERT_COST * len(batch))
            answers = self._send_batch(batch, label_id)
            confirmed = [
                Confirmed(item.key, answer)
                for item, answer in zip(batch, answers, strict=True)
                if isinstance(answer, str)
            ]
            if confirmed:
                on_confirmed(confirmed)
            retry: list[Outgoing] = []
            fatal: PartFailure | None = None
            longest_hint: float | None = None
            for item, answer in zip(batch, answers, strict=True):
                if isinstance(answer, str):
                    continue
                key = f"{answer.status} {answer.reason}".strip()
                self.stats.failures[key] = self.stats.failures.get(key, 0) + 1
                if (
                    answer.reason == "dailyLimitExceeded"
                    or answer.status == 401
                    or (answer.status == 403 and answer.reason == "insufficientPermissions")
                ):
                    fatal = fatal or answer
                    continue
                if not is_retryable(answer):
                    on_rejected(Rejected(item.key, f"{key}: {answer.message}"))
                    continue
                item.attempts += 1
                if item.attempts >= MAX_ATTEMPTS:
                    raise GmailError(
                        f"Gmail kept failing ({key}) after {MAX_ATTEMPTS} attempts; "
                        "everything confirmed so far is recorded",
                        "check the network and run the backup again later",
                    )
                if answer.status == 429 or answer.reason in RETRYABLE_REASONS:
                    self.bucket.drain()
                if answer.retry_after is not None:
                    longest_hint = max(longest_hint or 0.0, answer.retry_after)
                retry.append(item)
            if fatal is not None:
                _raise_for_fatal(fatal)
            if retry:
                self.stats.retried_parts += len(retry)
                attempt = max(item.attempts for item in retry)
                self._wait(backoff_delay(attempt, longest_hint, self.rng))
                retry_queue.extend(retry)

    def _send_batch(self, batch: Sequence[Outgoing], label_id: str) -> list[str | PartFailure]:
        """One batch request; per part either the Gmail id or the failure."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        answers: dict[str, str | PartFailure] = {}

        def collect(request_id: str, response: Any, exception: Any) -> None:
            if exception is None:
                answers[request_id] = str(response["id"])
            elif isinstance(exception, HttpError):
                answers[request_id] = failure_from_http_error(exception)
            else:
                answers[request_id] = PartFailure(0, "transport", str(exception))

        request = BatchHttpRequest(callback=collect, batch_uri=self.batch_uri)
        messages = self.service.users().messages()
        for index, item in enumerate(batch):
            request.add(
                messages.insert(
                    userId="me",
                    internalDateSource="dateHeader",
                    body={
                        "raw": base64.urlsafe_b64encode(item.raw).decode("ascii"),
                        "labelIds": [label_id],
                    },
                ),
                request_id=str(index),
            )
        self.stats.batches += 1
        self.stats.requests += len(batch)
        try:
            _translate_auth(request.execute)
        except HttpError as error:
            whole = failure_from_http_error(error)
            _raise_for_fatal(whole)
            if not is_retryable(whole):
                raise GmailError(
                    f"Gmail refused the batch request: {whole.status} {whole.message}",
                    "this is a bug in smsbak or a change at Gmail; please report it",
                ) from error
            return [whole] * len(batch)
        except TRANSPORT_ERRORS as error:
            log.info("batch lost in transit (%s); its parts go again", type(error).__name__)
            return [PartFailure(0, "transport", type(error).__name__)] * len(batch)
        return [
            answers.get(str(index), PartFailure(0, "missing", "no answer for this part"))
            for index in range(len(batch))
        ]


def _translate_auth(execute: Callable[[], Any]) -> Any:
    """A revoked or expired grant is not retryable: say how to log in again."""
    from google.auth.exceptions import RefreshError

    try:
        return execute()
    except RefreshError as error:
        raise AuthError(
            f"Google no longer accepts the saved login ({_refresh_reason(error)})", REAUTH_HINT
        ) from error


def _refresh_reason(error: Exception) -> str:
    text = str(error)
    return "invalid_grant: revoked or expired" if "invalid_grant" in text else text[:200]
