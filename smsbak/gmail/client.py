"""The Gmail destination: labels, and paced batch uploads that never re-send a confirmed part.

:class:`GmailMailbox` implements :class:`smsbak.ports.Destination` (identity
``gmail:ACCOUNT``; Gmail merges a second copy of a Message-ID itself, and counts a
label's messages even with the insert-only backup login).

Uploads are ``messages.insert`` with ``raw`` bodies, 50 to a batch request, and
up to two batch requests on their way at once as the quota allows (on a slow
link the next batch goes while the last one is answered). Each part is answered
separately: parts Gmail confirmed are handed to the caller at once (to be
recorded), failed parts are retried alone, after a delay that grows
exponentially with jitter and honours any retry time Gmail gives.
A batch that fails as a whole (connection dropped, outer 5xx) confirmed
nothing, so all its parts go again; Gmail merges any that had in fact arrived
by their Message-ID.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any, Generic, TypeVar

from smsbak.errors import AuthError, DailyLimitExceeded, GmailError
from smsbak.gmail.auth import REAUTH_HINT
from smsbak.gmail.pacing import GET_COST, INSERT_COST, LIST_COST, TokenBucket
from smsbak.ports import Confirmed, DestinationCapabilities, Outgoing, Rejected

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RAW_LIMIT = 700_000
"""Largest message sent as a JSON ``raw`` body: base64 makes it about 4/3 larger, and
Gmail refuses JSON bodies over about 1 MB."""
UPLOAD_CHUNK = 4 * 1024 * 1024
MAX_BACKOFF = 64.0
LONGEST_WAIT = 900.0
MAX_IN_FLIGHT = 2
"""Batch requests on their way at once. Two hide one answer's wait behind the next
batch, which is all a few hundred ms per request needs; Gmail answers 429 "too many
concurrent requests" to a user who opens many more, so it stays small."""
OVERLAP_AFTER = 0.25
"""Seconds the last batch sent waits for its answer before the next may go too. An
answer quicker than that costs little to wait for and keeps the batches arriving
in order (oldest first, so an interrupted first backup leaves no gap in Gmail);
a slower one means a slow link, where waiting would cost a round trip per batch."""
BACKUP_LOGIN = "smsbak auth --client-secrets FILE"
RESTORE_LOGIN = "smsbak auth --restore --client-secrets FILE"
"""Restore reads with its own login (token-restore.json): a failing one is made again so."""
RETRYABLE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}
_RETRY_AFTER_TEXT = re.compile(r"Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)")


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


def _reason_and_message(error: Any) -> tuple[str, str]:
    """Google's legacy ``errors[].reason`` (dailyLimitExceeded, ...) from the error body.

    googleapiclient's ``error_details`` prefers ``details[]``, whose ErrorInfo
    reasons are spelled differently (RATE_LIMIT_EXCEEDED), so read the body.
    """
    message = str(getattr(error, "reason", "") or "")
    try:
        body = json.loads(getattr(error, "content", b"") or b"{}")
        problem = body.get("error", {}) if isinstance(body, dict) else {}
        entries = problem.get("errors") or []
        if entries and isinstance(entries[0], dict) and entries[0].get("reason"):
            return str(entries[0]["reason"]), str(entries[0].get("message") or message)
        message = str(problem.get("message") or message)
    except (ValueError, AttributeError, TypeError):
        pass
    details = getattr(error, "error_details", None)
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", "")), str(details[0].get("message", message))
    return "", message


def failure_from_http_error(error: Any) -> PartFailure:
    """Status, Google's error reason and any retry time from a googleapiclient HttpError."""
    status = int(getattr(error, "status_code", 0) or getattr(error.resp, "status", 0) or 0)
    reason, message = _reason_and_message(error)
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


def _raise_for_fatal(failure: PartFailure, login: str = BACKUP_LOGIN) -> None:
    """Failures no retry fixes and that concern every message, not one.

    ``login`` is the command that makes the login this mailbox uses again.
    """
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
        raise AuthError("Gmail no longer accepts the saved login", relogin_hint(login))
    if failure.status == 403 and failure.reason in ("insufficientPermissions", "forbidden"):
        raise AuthError(
            f"the saved login may not do this: {failure.message}",
            f"run `{login}` again and allow every permission",
        )


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Exponential with full jitter, never shorter than what the server asked for."""
    exponential = min(MAX_BACKOFF, 2.0 ** max(0, attempt - 1))
    delay = exponential * (0.5 + rng.random() / 2)
    return max(delay, retry_after or 0.0)


T = TypeVar("T")


class RequestRefused(GmailError):
    """Gmail answered 4xx for this one request: the request is at fault, not the run."""

    def __init__(self, message: str, hint: str, *, status: int) -> None:
        super().__init__(message, hint)
        self.status = status


def transport_errors() -> tuple[type[BaseException], ...]:
    """Failures of the connection rather than answers from Gmail: all worth a retry.

    No network raises httplib2's ServerNotFoundError (not an OSError), and a
    token refresh without network raises google-auth's TransportError.
    """
    import httplib2
    from google.auth.exceptions import TransportError

    return (OSError, http.client.HTTPException, httplib2.HttpLib2Error, TransportError)


class GmailMailbox:
    def __init__(
        self,
        service: Any,
        batch_uri: str,
        bucket: TokenBucket,
        *,
        batch_size: int = 50,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        login: str = BACKUP_LOGIN,
        account: str = "",
        readable: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.account = account
        self._on_close = on_close
        self._capabilities = DestinationCapabilities(
            readable=readable, merges_message_ids=True, counts_folder=True
        )
        """Readable only with the restore login's read scope; the backup login inserts."""
        self.service = service
        self.login = login
        """The command that logs in again when Gmail refuses this mailbox's login."""
        self.batch_uri = batch_uri
        self.bucket = bucket
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stats = UploadStats()
        self.max_in_flight = MAX_IN_FLIGHT
        """At most this many batch requests on their way at once (1: one after another)."""

    def _call(self, request: Any, *, conflict_ok: bool = False) -> Any:
        """One ordinary call, with the same retry policy as batch parts.

        With ``conflict_ok`` a 409 answer returns None instead of failing.
        """
        from googleapiclient.errors import HttpError

        attempt = 0
        while True:
            attempt += 1
            try:
                return _translate_auth(request.execute, self.login)
            except HttpError as error:
                failure = failure_from_http_error(error)
            except transport_errors() as error:
                failure = PartFailure(0, "transport", str(error))
            _raise_for_fatal(failure, self.login)
            if conflict_ok and failure.status == 409:
                return None
            if not is_retryable(failure) and 400 <= failure.status < 500:
                raise RequestRefused(
                    f"Gmail refused a request: {failure.status} {failure.reason} "
                    f"{failure.message}".strip(),
                    "this message cannot be stored as it is; the others are not affected",
                    status=failure.status,
                )
            if not is_retryable(failure) or attempt >= self.max_attempts:
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

    # --- the Destination port -----------------------------------------------------

    @property
    def identity(self) -> str:
        return f"gmail:{self.account}"

    @property
    def capabilities(self) -> DestinationCapabilities:
        return self._capabilities

    @property
    def description(self) -> str:
        return "Gmail"

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        """Which Message-IDs the label holds, by ``rfc822msgid:`` search (read login only).

        The backup never needs it: Gmail keeps one copy of a Message-ID by itself
        (``merges_message_ids``), so a re-send is harmless and cheaper than a search.
        The insert-only backup login cannot search: it answers {}.
        """
        if not self._capabilities.readable:
            return {}
        found: dict[str, str] = {}
        for message_id in dict.fromkeys(message_ids):
            bare = message_id.strip().removeprefix("<").removesuffix(">")
            if not bare or any(c.isspace() or c == '"' for c in bare):
                continue  # not a Message-ID one can search for
            for remote_id in self.list_ids(folder, f"rfc822msgid:{bare}"):
                found[message_id] = remote_id
                break
        return found

    def count(self, folder: str) -> int:
        """How many messages the label holds (labels.get works with the labels scope)."""
        label = self._call(self.service.users().labels().get(userId="me", id=folder))
        return int(label.get("messagesTotal", 0))

    def close(self) -> None:
        """Nothing is held open between requests; the wiring's ``on_close`` keeps a
        refreshed access token for the next run."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def find_folder(self, name: str) -> str | None:
        """The id of label ``name`` (Gmail compares label names without case), or None."""
        labels = self._call(self.service.users().labels().list(userId="me"))
        for label in labels.get("labels", []):
            if str(label.get("name", "")).casefold() == name.casefold():
                return str(label["id"])
        return None

    def ensure_folder(self, name: str) -> str:
        """The id of label ``name``, created when missing; a creation race is fine."""
        for _ in range(2):
            existing = self.find_folder(name)
            if existing is not None:
                return existing
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
        accepted, in the calling thread, as soon as that answer is in, so the
        caller can commit them; another batch (of other items) may be on its way
        meanwhile. Both callbacks always run in the thread that called ``upload``.
        """
        messages = self.service.users().messages()

        def insert(item: Outgoing) -> Any:
            return messages.insert(
                userId="me",
                internalDateSource="dateHeader",
                body={
                    "raw": base64.urlsafe_b64encode(item.raw).decode("ascii"),
                    "labelIds": [label_id],
                },
            )

        def answered(parts: Sequence[tuple[Outgoing, Any]]) -> None:
            on_confirmed([Confirmed(item.key, str(response["id"])) for item, response in parts])

        def small(items: Iterable[Outgoing]) -> Iterator[Outgoing]:
            """Batchable items; a large one (an MMS with a video) goes up on its own, now.

            A JSON body over about 1 MB is refused and media uploads do not work in a
            batch, so those take a resumable upload, one request sequence each.
            """
            for item in items:
                if len(item.raw) <= RAW_LIMIT:
                    yield item
                elif not should_stop():
                    self._upload_large(item, label_id, on_confirmed, on_rejected)

        self._batched(
            small(items),
            insert,
            INSERT_COST,
            key=lambda item: item.key,
            on_answers=answered,
            on_rejected=lambda item, reason: on_rejected(Rejected(item.key, reason)),
            should_stop=should_stop,
        )

    def _upload_large(
        self,
        item: Outgoing,
        label_id: str,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
    ) -> None:
        """messages.insert with a resumable media upload, retried like everything else."""
        from googleapiclient.http import MediaIoBaseUpload

        self.stats.waited_for_quota += self.bucket.acquire(INSERT_COST)
        media = MediaIoBaseUpload(
            io.BytesIO(item.raw),
            mimetype="message/rfc822",
            chunksize=UPLOAD_CHUNK,
            resumable=True,
        )
        request = (
            self.service.users()
            .messages()
            .insert(
                userId="me",
                internalDateSource="dateHeader",
                body={"labelIds": [label_id]},
                media_body=media,
            )
        )
        try:
            response = self._call(request)
        except RequestRefused as error:
            on_rejected(Rejected(item.key, error.message))
            return
        on_confirmed([Confirmed(item.key, str(response["id"]))])

    def list_ids(self, label_id: str, query: str = "") -> Iterator[str]:
        """Every message id under a label, newest first, 500 a page."""
        token: str | None = None
        while True:
            self.stats.waited_for_quota += self.bucket.acquire(LIST_COST)
            page = self._call(
                self.service.users()
                .messages()
                .list(
                    userId="me",
                    labelIds=[label_id],
                    q=query or None,
                    maxResults=500,
                    pageToken=token,
                )
            )
            for entry in page.get("messages", []):
                yield str(entry["id"])
            token = page.get("nextPageToken")
            if not token:
                return

    def fetch_raw(
        self,
        ids: Iterable[str],
        *,
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """The raw RFC 822 bytes of each message, in paced batches of at most 50."""
        messages = self.service.users().messages()

        def answered(parts: Sequence[tuple[str, Any]]) -> None:
            on_fetched(
                [
                    (gmail_id, base64.urlsafe_b64decode(_padded(str(response["raw"]))))
                    for gmail_id, response in parts
                ]
            )

        self._batched(
            ids,
            lambda gmail_id: messages.get(userId="me", id=gmail_id, format="raw"),
            GET_COST,
            key=lambda gmail_id: gmail_id,
            on_answers=answered,
            on_rejected=on_rejected,
            should_stop=should_stop,
        )

    def _batched(
        self,
        items: Iterable[T],
        make_request: Callable[[T], Any],
        cost: int,
        *,
        key: Callable[[T], str],
        on_answers: Callable[[Sequence[tuple[T, Any]]], None],
        on_rejected: Callable[[T, str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        """Paced batches, up to ``max_in_flight`` on their way at once; per-part retries.

        On a slow link a batch spends most of its life waiting for the answer, so
        once the last batch sent has waited ``OVERLAP_AFTER`` the next one goes as
        soon as the token bucket allows rather than after the answer. A quick
        answer is simply awaited: on a fast link batches then reach Gmail strictly
        one after another, oldest first, as they always did. Nor does a smaller
        batch (the last one) overtake a bigger one in flight. Each batch in flight
        has its own Http (httplib2 is not thread-safe); only the HTTP exchange runs
        in a worker thread. Everything else (building requests, the bucket, the
        callbacks, the retry queue) stays in the calling thread, so the caller's
        callbacks never see another thread.

        A part is in at most one batch at a time and leaves the retry queue only
        to be sent, so a part Gmail confirmed is never sent again. A pause for a
        retry, and a run-ending failure, wait until nothing is in flight: every
        answer that arrived is handed over (and recorded) before sleeping or raising.
        """
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        source = iter(items)  # consumed lazily: a batch is built only when it can go
        retry_queue: deque[T] = deque()
        attempts: dict[str, int] = {}
        in_flight: dict[Future[list[Any]], tuple[list[T], Any]] = {}
        idle_https: list[Any] = []
        settle = _Settlement[T](self, key, on_answers, on_rejected, attempts, retry_queue)
        pending: list[T] | None = None
        last_sent = 0.0
        limit = max(1, self.max_in_flight)
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="smsbak-batch") as pool:
            try:
                while True:
                    may_send = settle.fatal is None and settle.pause is None
                    if (
                        may_send
                        and pending is None
                        and len(in_flight) < limit
                        and not should_stop()
                    ):
                        pending = self._next_batch(retry_queue, source, cost) or None
                    timeout: float | None = None
                    if pending is not None and may_send and len(in_flight) < limit:
                        units = cost * len(pending)
                        delay = 0.0
                        if in_flight:
                            waiting = time.monotonic() - last_sent
                            delay = max(self.bucket.delay(units), OVERLAP_AFTER - waiting)
                            biggest = max(len(sent) for sent, _ in in_flight.values())
                            if len(pending) < biggest:
                                # A smaller batch may be answered, and metered by Gmail,
                                # before a bigger one sent earlier, spending quota that
                                # one was paced against: it waits for their answers.
                                delay = math.inf
                        if delay <= 0.0:
                            self.stats.waited_for_quota += self.bucket.acquire(units)
                            http = idle_https.pop() if idle_https else self._new_http()
                            requests = [make_request(item) for item in pending]
                            self.stats.batches += 1
                            self.stats.requests += len(requests)
                            future = pool.submit(self._send_batch, requests, http)
                            last_sent = time.monotonic()
                            in_flight[future] = (pending, http)
                            pending = None
                            continue
                        if delay < math.inf:
                            timeout = delay  # collect answers while the bucket fills
                    if not in_flight:
                        if settle.fatal is not None:
                            raise settle.fatal
                        if settle.pause is not None:
                            pause, settle.pause = settle.pause, None
                            self._wait(pause)
                            continue
                        return
                    done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        batch, http = in_flight.pop(future)
                        idle_https.append(http)
                        settle.batch(batch, future)
            except BaseException:
                # Something failed here (a large upload, a callback, Ctrl-C): what is in
                # flight may be stored already, so hand its answers over before leaving.
                self._drain(in_flight, settle)
                raise

    @staticmethod
    def _drain(in_flight: dict[Any, tuple[list[T], Any]], settle: _Settlement[T]) -> None:
        """Wait for every batch in flight and hand over its answers, come what may."""
        for future, (batch, _http) in list(in_flight.items()):
            try:
                future.result()
                settle.batch(batch, future)
            except Exception as error:  # the first failure is the one being raised
                log.debug("answer of a batch in flight lost while stopping: %r", error)
        in_flight.clear()

    def _next_batch(self, retry_queue: deque[T], source: Iterator[T], cost: int) -> list[T]:
        """Failed parts first, then new items, up to one batch the bucket can pay at once.

        A batch costing more than the bucket holds would be sent short of quota.
        """
        size = max(1, min(self.batch_size, int(self.bucket.capacity // cost)))
        batch: list[T] = []
        while retry_queue and len(batch) < size:
            batch.append(retry_queue.popleft())
        batch.extend(islice(source, size - len(batch)))
        return batch

    def _new_http(self) -> Any:
        """An Http of its own for one batch in flight, sharing the mailbox's login."""
        from smsbak.gmail.transport import sibling_http

        return sibling_http(self.service._http)

    def _send_batch(self, requests: Sequence[Any], http: Any = None) -> list[Any]:
        """One batch request; per part either the response body or a PartFailure.

        Runs in a worker thread when batches are pipelined: it touches nothing of
        the mailbox but ``http`` (its own) and the login (refreshed under a lock).
        """
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        answers: dict[str, Any] = {}

        def collect(request_id: str, response: Any, exception: Any) -> None:
            if exception is None:
                answers[request_id] = response
            elif isinstance(exception, HttpError):
                answers[request_id] = failure_from_http_error(exception)
            else:
                answers[request_id] = PartFailure(0, "transport", str(exception))

        batch = BatchHttpRequest(callback=collect, batch_uri=self.batch_uri)
        for index, request in enumerate(requests):
            batch.add(request, request_id=str(index))
        try:
            _translate_auth(lambda: batch.execute(http=http), self.login)
        except HttpError as error:
            whole = failure_from_http_error(error)
            _raise_for_fatal(whole, self.login)
            if not is_retryable(whole):
                raise GmailError(
                    f"Gmail refused the batch request: {whole.status} {whole.message}",
                    "this is a bug in smsbak or a change at Gmail; please report it",
                ) from error
            return [whole] * len(requests)
        except transport_errors() as error:
            log.info("batch lost in transit (%s); its parts go again", type(error).__name__)
            return [PartFailure(0, "transport", type(error).__name__)] * len(requests)
        return [
            answers.get(str(index), PartFailure(0, "missing", "no answer for this part"))
            for index in range(len(requests))
        ]


class _Settlement(Generic[T]):
    """What the answers of the batches so far decided: run-ending failure, pause, retries.

    Used by ``GmailMailbox._batched`` in the calling thread only.
    """

    def __init__(
        self,
        mailbox: GmailMailbox,
        key: Callable[[T], str],
        on_answers: Callable[[Sequence[tuple[T, Any]]], None],
        on_rejected: Callable[[T, str], None],
        attempts: dict[str, int],
        retry_queue: deque[T],
    ) -> None:
        self.mailbox = mailbox
        self.key = key
        self.on_answers = on_answers
        self.on_rejected = on_rejected
        self.attempts = attempts
        self.retry_queue = retry_queue
        self.fatal: BaseException | None = None
        """The first run-ending failure; raised once nothing is in flight."""
        self.pause: float | None = None
        """Seconds to wait before the next batch, once nothing is in flight."""

    def batch(self, batch: list[T], answered: Any) -> None:
        """Hand over one batch's answers: confirmed, rejected, to retry, or run-ending."""
        box = self.mailbox
        try:
            answers: list[Any] = answered.result()
        except Exception as error:  # raised in the worker: AuthError, GmailError, a bug
            self.fatal = self.fatal or error
            return
        succeeded = [
            (item, answer)
            for item, answer in zip(batch, answers, strict=True)
            if not isinstance(answer, PartFailure)
        ]
        if succeeded:
            self.on_answers(succeeded)
        retry: list[T] = []
        longest_hint: float | None = None
        for item, answer in zip(batch, answers, strict=True):
            if not isinstance(answer, PartFailure):
                continue
            label = f"{answer.status} {answer.reason}".strip()
            box.stats.failures[label] = box.stats.failures.get(label, 0) + 1
            if (
                answer.reason == "dailyLimitExceeded"
                or answer.status == 401
                or (answer.status == 403 and answer.reason == "insufficientPermissions")
            ):
                self.fatal = self.fatal or _fatal_error(answer, box.login)
                continue
            if not is_retryable(answer):
                self.on_rejected(item, f"{label}: {answer.message}")
                continue
            attempt = self.attempts[self.key(item)] = self.attempts.get(self.key(item), 0) + 1
            if attempt >= box.max_attempts:
                self.fatal = self.fatal or GmailError(
                    f"Gmail kept failing ({label}) after {box.max_attempts} attempts; "
                    "everything confirmed so far is recorded",
                    "check the network and run the command again later",
                )
                continue
            if answer.status == 429 or answer.reason in RETRYABLE_REASONS:
                box.bucket.drain()
            if answer.retry_after is not None:
                longest_hint = max(longest_hint or 0.0, answer.retry_after)
            retry.append(item)
        if retry:
            box.stats.retried_parts += len(retry)
            worst = max(self.attempts[self.key(item)] for item in retry)
            delay = backoff_delay(worst, longest_hint, box.rng)
            self.pause = max(self.pause or 0.0, delay)
            self.retry_queue.extend(retry)


def _fatal_error(failure: PartFailure, login: str) -> BaseException:
    """The run-ending error ``_raise_for_fatal`` raises for ``failure``, as a value."""
    try:
        _raise_for_fatal(failure, login)
    except GmailError as error:
        return error
    except AuthError as error:
        return error
    return GmailError(f"Gmail refused: {failure.status} {failure.reason} {failure.message}")


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def relogin_hint(login: str) -> str:
    return REAUTH_HINT if login == BACKUP_LOGIN else f"run `{login}` again to log in"


def _translate_auth(execute: Callable[[], Any], login: str = BACKUP_LOGIN) -> Any:
    """A revoked or expired grant is not retryable: say how to log in again."""
    from google.auth.exceptions import RefreshError, TransportError

    try:
        return execute()
    except RefreshError as error:
        if getattr(error, "retryable", False):
            # The token endpoint failed (5xx), the grant is fine: retry like the network.
            raise TransportError(str(error)) from error
        raise AuthError(
            f"Google no longer accepts the saved login ({_refresh_reason(error)})",
            relogin_hint(login),
        ) from error


def _refresh_reason(error: Exception) -> str:
    text = str(error)
    return "invalid_grant: revoked or expired" if "invalid_grant" in text else text[:200]
