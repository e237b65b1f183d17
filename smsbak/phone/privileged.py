"""Commands as Android's shell user (Shizuku's ``rish``) or as root (``su``).

Only these can write the SMS store from Termux (``content insert`` after the
WRITE_SMS app-op is granted to the shell) or see every SMS box. ``rish``
started from the background may hang on Android 10+, so every call has a
timeout; many commands go through one shell start to save process starts.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from smsbak.errors import PhoneError

RISH_APP_ID = "com.termux"


@dataclass(frozen=True)
class ShellResult:
    returncode: int
    stdout: str
    stderr: str


class PrivilegedShell:
    """A way to run ``sh`` commands with more rights than Termux has."""

    def __init__(self, kind: str, timeout: float) -> None:
        if kind not in ("rish", "su"):
            raise ValueError(kind)
        self.kind = kind
        self.timeout = timeout

    @property
    def description(self) -> str:
        return "Shizuku (rish)" if self.kind == "rish" else "root (su)"

    @classmethod
    def detect(
        cls, timeout: float, prefer: Sequence[str] = ("rish", "su")
    ) -> PrivilegedShell | None:
        """The first of rish, su that runs ``id -u`` and answers with a number."""
        for kind in prefer:
            shell = cls(kind, timeout)
            try:
                result = shell.run("id -u", timeout=min(timeout, 15))
            except PhoneError:
                continue
            if result.returncode == 0 and result.stdout.strip().isdigit():
                return shell
        return None

    def run(self, script: str, *, timeout: float | None = None) -> ShellResult:
        returncode, out, err = self.run_bytes(script, timeout=timeout)
        return ShellResult(returncode, out.decode("utf-8", "replace"), err)

    def read_bytes(self, script: str, what: str) -> bytes:
        """Binary output (an MMS attachment from `content read`), exactly."""
        returncode, out, err = self.run_bytes(script)
        problem = _content_error(ShellResult(returncode, "", err))
        if returncode != 0 or problem:
            raise PhoneError(
                f"{what} failed through {self.description}: {problem or err.strip()[-200:]}",
                _hint(self.kind),
            )
        return out

    def run_bytes(self, script: str, *, timeout: float | None = None) -> tuple[int, bytes, str]:
        env = dict(os.environ)
        env.setdefault("RISH_APPLICATION_ID", RISH_APP_ID)
        try:
            process = subprocess.Popen(
                [self.kind, "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise PhoneError(f"{self.kind} is not installed", _hint(self.kind)) from error
        except OSError as error:
            raise PhoneError(f"cannot run {self.kind}: {error}", _hint(self.kind)) from error
        try:
            out, err = process.communicate(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            _end(process)
            raise PhoneError(
                f"{self.kind} did not answer within {timeout or self.timeout:g} s", _hint(self.kind)
            ) from None
        except BaseException:
            # Ctrl-C: stop the inserts too, or a re-run could race them and write twice.
            _end(process)
            raise
        return process.returncode, out, err.decode("utf-8", "replace")

    def check(self, script: str, what: str, *, timeout: float | None = None) -> ShellResult:
        result = self.run(script, timeout=timeout)
        problem = _content_error(result)
        if result.returncode != 0 or problem:
            detail = problem or (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise PhoneError(
                f"{what} failed through {self.description}: {detail}", _hint(self.kind)
            )
        return result


def _end(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _hint(kind: str) -> str:
    if kind == "rish":
        return (
            "start Shizuku, allow Termux in it, and export rish to Termux "
            "(Shizuku > Use Shizuku in terminal apps)"
        )
    return "grant Termux root access in your root manager (Magisk, KernelSU)"


_BOUND_TEXT = re.compile(r"(\w+:[sn]:).*")


def _content_error(result: ShellResult) -> str | None:
    """``content`` reports parse errors on stdout with exit status 0.

    Such errors can quote a whole ``--bind`` argument, message text included:
    that part is cut so it reaches neither the terminal nor the run history.
    """
    for line in result.stdout.splitlines():
        if line.startswith("[ERROR]"):
            return _BOUND_TEXT.sub(r"\1(text not shown)", line)
    for line in result.stderr.splitlines():
        if "Exception" in line or line.startswith("Error"):
            return _BOUND_TEXT.sub(r"\1(text not shown)", line.strip())
    return None


def content_command(*args: str) -> str:
    return "content " + " ".join(shlex.quote(arg) for arg in args)


def escape_bind_value(value: str) -> str:
    """Escape for ``--bind COL:TYPE:VALUE`` under the current rule (backslash escapes)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


Row = dict[str, str | None]
REQUERY_BATCH = 100
"""Single-row queries per shell start (keeps the script well under Linux's argument limit)."""
NULL_CHECK_BATCH = 5000
"""Ids in one ``_id IN (...)`` (a whole store may hold thousands of drafts without address)."""


def query_rows(
    shell: PrivilegedShell,
    uri: str,
    projection: Sequence[str],
    what: str,
    *,
    where: str | None = None,
    sort: str | None = None,
) -> list[Row]:
    """The rows of a ``content query`` whose last column holds anyone's free text.

    ``content`` prints ``Row: N col=val, ...`` without escaping, so a message can
    hold a line that looks exactly like the next row (even a whole forged one).
    Only integers are certain: so one shell start runs two queries, first the
    ``_id`` column alone (its rows cannot be forged), then the whole projection,
    separated by a random marker no message can predict. Row k of the second
    output must start a line with ``Row: k _id=<k-th id>, ``; where that is not
    certain (such a line occurs twice, or is missing, or a value holds a line
    beginning ``Row: ``), that row alone is asked again with ``--where _id=N``,
    whose output holds one row, so everything after the last column's ``name=``
    is its value. The ids also give the row count, so rows forged after the
    last real one are never taken for rows.

    Cost: one process start (rish or su) and two ``content`` (Java) starts per
    call, where asking for the ids in a process of their own would cost two of
    each; the single-row queries only happen for such messages, and share one
    process start. Checking the output alone is not enough: a forged row at the
    end of the last message is indistinguishable from a real one without the count.
    """
    if not projection or projection[0] != "_id":
        raise ValueError("the projection must start with _id")
    options: list[str] = []
    if where:
        options += ["--where", where]
    if sort:
        options += ["--sort", sort]
    id_output, full_output = _run_queries(
        shell,
        [
            content_command("query", "--uri", uri, "--projection", "_id", *options),
            content_command("query", "--uri", uri, "--projection", ":".join(projection), *options),
        ],
        what,
    )
    ids = _parse_ids(id_output)
    rows, unsure = _split_known_rows(full_output, ids, projection)
    for start in range(0, len(unsure), REQUERY_BATCH):
        batch = unsure[start : start + REQUERY_BATCH]
        alone = ["query", "--uri", uri, "--projection", ":".join(projection), "--where"]
        outputs = _run_queries(
            shell, [content_command(*alone, f"_id={ids[index]}") for index in batch], what
        )
        for index, output in zip(batch, outputs, strict=True):
            rows[index] = _single_row(output, ids[index], projection)
    return [row for row in rows if row is not None]


def _run_queries(shell: PrivilegedShell, commands: Sequence[str], what: str) -> list[str]:
    """Several ``content`` commands in one shell start; their outputs, apart.

    Between outputs the shell prints a random line that no message can know.
    """
    marker = f"smsbak-{secrets.token_hex(16)}"
    script = "\n".join(f"{command}; echo {marker}" for command in commands)
    result = shell.run(script, timeout=shell.timeout + 3.0 * len(commands))
    pieces = result.stdout.split(f"{marker}\n")
    # A message may hold a line "[ERROR] ...": only output that is not rows can be an error.
    not_rows = "".join(piece for piece in pieces if not piece.startswith("Row: "))
    problem = _content_error(ShellResult(result.returncode, not_rows, result.stderr))
    if result.returncode != 0 or problem:
        detail = problem or (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PhoneError(f"{what} failed through {shell.description}: {detail}", _hint(shell.kind))
    if len(pieces) != len(commands) + 1 or pieces[-1].strip():
        raise _unexpected("the outputs of the queries could not be told apart")
    return pieces[:-1]


def _unexpected(detail: str) -> PhoneError:
    return PhoneError(
        f"unexpected `content query` output: {detail}",
        "the phone's content tool prints rows differently; please report this",
    )


_ID_ROW = re.compile(r"Row: (\d+) _id=(-?\d+)")


def _parse_ids(text: str) -> list[int]:
    """The rows of a query for ``_id`` alone: integers, so nothing can be forged."""
    if not text.strip() or text.startswith("No result found"):
        return []
    ids = []
    for index, line in enumerate(text.splitlines()):
        match = _ID_ROW.fullmatch(line)
        if match is None or int(match.group(1)) != index:
            raise _unexpected("a row of ids is not `Row: N _id=<number>`")
        ids.append(int(match.group(2)))
    return ids


def _split_known_rows(
    text: str, ids: Sequence[int], projection: Sequence[str]
) -> tuple[list[Row | None], list[int]]:
    """The rows whose bounds are certain, and the indexes of those that are not."""
    if text.endswith("\n"):
        text = text[:-1]
    count = len(ids)
    # starts[k]: where row k's values begin, when row k's header is certain.
    starts: list[int | None] = [None] * count
    heads: list[int | None] = [None] * count
    for index, row_id in enumerate(ids):
        header = f"Row: {index} _id={row_id}"
        header += ", " if len(projection) > 1 else ""
        if index == 0:
            found = [0] if text.startswith(header) else []
            found += [m + 1 for m in _find_all(text, "\n" + header)]
        else:
            found = [m + 1 for m in _find_all(text, "\n" + header)]
        if len(found) == 1:
            heads[index] = found[0]
            starts[index] = found[0] + len(f"Row: {index} ")
    rows: list[Row | None] = [None] * count
    unsure: list[int] = []
    for index in range(count):
        start, head = starts[index], heads[index]
        last = index + 1 == count
        following = None if last else heads[index + 1]
        certain = start is not None and (last or following is not None)
        if certain and head is not None and following is not None and following <= head:
            certain = False
        if certain:
            assert start is not None
            end = len(text) if following is None else following - 1
            values = text[start:end]
            if "\nRow: " in values:
                certain = False  # a line that could be a row start: ask for this row alone
            else:
                try:
                    rows[index] = _parse_row(values, projection)
                except PhoneError:
                    certain = False
        if not certain:
            unsure.append(index)
    return rows, unsure


def _find_all(text: str, needle: str) -> list[int]:
    found = []
    position = text.find(needle)
    while position >= 0:
        found.append(position)
        position = text.find(needle, position + 1)
    return found


def _single_row(text: str, row_id: int, projection: Sequence[str]) -> Row | None:
    """The output of a query for one ``_id``: the last value runs to the end."""
    if not text.strip() or text.startswith("No result found"):
        return None  # deleted meanwhile
    if text.endswith("\n"):
        text = text[:-1]
    header = "Row: 0 "
    expected = f"{header}_id={row_id}" + (", " if len(projection) > 1 else "")
    if not (text.startswith(expected) and (len(projection) > 1 or text == expected)):
        raise _unexpected(f"the row for _id={row_id} is missing")
    return _parse_row(text[len(header) :], projection)


def tell_null_from_text(
    shell: PrivilegedShell,
    uri: str,
    rows: Sequence[Row],
    columns: Sequence[str],
    what: str,
) -> None:
    """`content` prints both a NULL value and the text "NULL" as NULL: ask again.

    Rare (a message whose text is the word NULL), so one extra query per column
    that printed NULL at all, for all such rows at once, and all those queries in
    one shell start (each start is a Java start on the phone); rows whose value is
    the text get it back in place.
    """
    commands: list[str] = []
    asked: list[str] = []  # the column each command asks about
    for column in columns:
        suspects = sorted(
            {int(row["_id"] or 0) for row in rows if row.get(column) is None and _is_int(row)}
        )
        for start in range(0, len(suspects), NULL_CHECK_BATCH):
            listed = ",".join(str(row_id) for row_id in suspects[start : start + NULL_CHECK_BATCH])
            where = f"_id IN ({listed}) AND {column} IS NULL"
            commands.append(
                content_command("query", "--uri", uri, "--projection", "_id", "--where", where)
            )
            asked.append(column)
    if not commands:
        return
    really_null: dict[str, set[int]] = {column: set() for column in columns}
    for column, answer in zip(asked, _run_queries(shell, commands, what), strict=True):
        really_null[column].update(_parse_ids(answer))
    for column in columns:
        for row in rows:
            if (
                row.get(column) is None
                and _is_int(row)
                and int(row["_id"] or 0) not in really_null[column]
            ):
                row[column] = "NULL"


def _is_int(row: Row) -> bool:
    value = row.get("_id")
    return value is not None and value.lstrip("-").isdigit()


def _parse_row(line: str, projection: Sequence[str]) -> dict[str, str | None]:
    row: dict[str, str | None] = {}
    rest = line
    for index, column in enumerate(projection):
        prefix = f"{column}="
        if not rest.startswith(prefix):
            raise PhoneError(
                f"unexpected `content query` output near column {column!r}",
                "the phone's content tool prints rows differently; please report this",
            )
        rest = rest[len(prefix) :]
        if index + 1 < len(projection):
            separator = f", {projection[index + 1]}="
            cut = rest.find(separator)
            if cut < 0:
                raise PhoneError(
                    f"`content query` row lacks column {projection[index + 1]!r}",
                    "the phone's content tool prints rows differently; please report this",
                )
            value, rest = rest[:cut], rest[cut + 2 :]
        else:
            value, rest = rest, ""
        row[column] = None if value == "NULL" else value
    return row


# ------------------------------------------------------------ exact batched queries

HEX_VALUE = re.compile(r"NULL|[0-9A-F]*")
"""What ``hex()`` of a text column prints: nothing to forge a row with."""


def hex_of(column: str) -> str:
    """``hex(col)`` in a projection: the text as the hex of its UTF-8 bytes."""
    return f"hex({column})"


def length_of(column: str) -> str:
    """``length(col)``: NULL for NULL, so NULL and the empty text are told apart."""
    return f"length({column})"


@dataclass(frozen=True)
class ExactQuery:
    """One ``content query`` whose projection holds only integer columns and
    :func:`hex_of` / :func:`length_of` of text columns."""

    uri: str
    projection: tuple[str, ...]
    where: str | None = None
    sort: str | None = None

    def command(self) -> str:
        options: list[str] = []
        if self.where:
            options += ["--where", self.where]
        if self.sort:
            options += ["--sort", self.sort]
        return content_command(
            "query", "--uri", self.uri, "--projection", ":".join(self.projection), *options
        )


def query_exact(
    shell: PrivilegedShell,
    queries: Sequence[ExactQuery],
    what: str,
    *,
    before: Sequence[str] = (),
) -> list[list[Row]]:
    """Many queries in one shell start, each one ``content`` (Java) start, rows certain.

    Free text reaches the output only as ``hex()`` of it, so no message can print a
    line that looks like a row (what :func:`query_rows` pays a second query per call
    to rule out). Every row is ``Row: N`` numbered from 0 with exactly the
    projection's columns, every hex value hex digits: anything else is an error,
    never a guess (an integer column holding odd text cannot add a column or a line
    without that showing). In the rows returned a ``hex(col)`` value is decoded back
    under the name ``col`` (None for NULL, or when ``length(col)`` says NULL).

    ``before``: commands that print nothing (inserts) run first in the same shell
    start, so what they wrote is confirmed without a start of its own.
    """
    if not queries and not before:
        return []
    commands = [*before, *(query.command() for query in queries)]
    outputs = _run_queries(shell, commands, what)
    if any(output.strip() for output in outputs[: len(before)]):
        raise _unexpected("a command that prints nothing printed something")
    outputs = outputs[len(before) :]
    return [
        _exact_rows(output, query.projection)
        for output, query in zip(outputs, queries, strict=True)
    ]


_HEX_NAME = re.compile(r"hex\((\w+)\)")
_LENGTH_NAME = re.compile(r"length\((\w+)\)")


def _exact_rows(text: str, projection: Sequence[str]) -> list[Row]:
    if not text.strip() or text.startswith("No result found"):
        return []
    rows: list[Row] = []
    for index, line in enumerate(text.rstrip("\n").split("\n")):
        head = f"Row: {index} "
        if not line.startswith(head):
            raise _unexpected(f"row {index} of an exact query does not start with {head!r}")
        cells = line[len(head) :].split(", ")
        if len(cells) != len(projection):
            raise _unexpected(f"row {index} of an exact query has {len(cells)} values")
        raw: dict[str, str | None] = {}
        for column, cell in zip(projection, cells, strict=True):
            name, equals, value = cell.partition("=")
            hexed = column.startswith("hex(")
            if name != column or not equals or (hexed and not HEX_VALUE.fullmatch(value)):
                raise _unexpected(f"column {column!r} of an exact query")
            raw[column] = None if value == "NULL" else value
        rows.append(_decoded(raw))
    return rows


def _decoded(raw: dict[str, str | None]) -> Row:
    row: Row = {}
    lengths = {}
    for column, value in raw.items():
        length = _LENGTH_NAME.fullmatch(column)
        if length:
            lengths[length.group(1)] = value
    for column, value in raw.items():
        if _LENGTH_NAME.fullmatch(column):
            continue
        hexed = _HEX_NAME.fullmatch(column)
        if hexed is None:
            row[column] = value
            continue
        name = hexed.group(1)
        if name in lengths and lengths[name] is None:
            row[name] = None
            continue
        try:
            text = bytes.fromhex(value or "").decode("utf-8", "replace")
        except ValueError:
            raise _unexpected(f"hex({name}) is not hex") from None
        row[name] = text if text or name in lengths else None
    return row
