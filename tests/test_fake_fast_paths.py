"""The fakes' stand-ins for json and re do exactly what they replace.

Every fake call is a process, so the fakes import neither json nor re on the way of a
call (tests/fakes/_termux_common.py says why): str code replaces the patterns, their
own writer json.dumps, marshal the JSON fixture and repr lines the JSON call log.  Each
stand-in is checked here against the pattern or the json call it replaced.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import _termux_common as common
from tests.fakes.phone import FakePhone, _as_json_would

FAKES = Path(__file__).resolve().parent / "fakes"

# Where re's Unicode rules differ from the obvious reading: whitespace beyond ASCII
# (and \x1c-\x1f, which str.isspace and \s both count), the letters IGNORECASE matches
# with an ASCII one (dotless i, dotted I, long s, Kelvin sign), digits beyond ASCII.
AWKWARD = list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000ıİſ\u212a٣²１_#?/:+-.()xX")


def texts(*words: str) -> st.SearchStrategy[str]:
    """Short texts of the given words, awkward characters and any characters."""
    piece = st.one_of(st.sampled_from([*words, *AWKWARD]), st.characters())
    return st.lists(piece, max_size=8).map("".join)


def fake_module(name: str) -> ModuleType:
    """A fake's module as the bin scripts import it (with tests/fakes on sys.path)."""
    sys.path.insert(0, str(FAKES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(FAKES))


@pytest.fixture(scope="module")
def api() -> ModuleType:
    return fake_module("_termux_api")


@pytest.fixture(scope="module")
def content() -> ModuleType:
    return fake_module("_content")


@pytest.fixture(scope="module")
def privileged() -> ModuleType:
    return fake_module("_privileged")


@pytest.fixture(scope="module")
def background() -> ModuleType:
    return fake_module("_background")


@settings(deadline=None)
@given(texts("-", "0", "12"))
def test_int_checks(text: str) -> None:
    assert common.is_int(text) == bool(re.match(r"-?[0-9]+\Z", text))
    assert common.is_uint(text) == bool(re.match(r"[0-9]+\Z", text))


@settings(deadline=None)
@given(texts("+49 170", "(0)", "12-34", "VODAFONE"))
def test_dialable(api: ModuleType, text: str) -> None:
    pattern = r"[0-9+\-().\s/]*[0-9][0-9+\-().\s/]*\Z"
    assert api.is_dialable(text) == bool(re.match(pattern, text))


@settings(deadline=None)
@given(texts("date", "DATE", "_id", "_ID", "asc", "desc", "DeSc", " "))
def test_sort_term(api: ModuleType, text: str) -> None:
    match = re.match(r"\s*(date|_id)(?:\s+(asc|desc))?\s*\Z", text, re.IGNORECASE)
    want = None if match is None else (match[1].lower(), (match[2] or "asc").lower() == "desc")
    assert api.sort_term(text) == want


@pytest.mark.parametrize("text", ["_ıd", "_İd", "date deſc", "\x1cdate\x85desc\u3000", "Date"])
def test_sort_term_beyond_ascii(api: ModuleType, text: str) -> None:
    match = re.match(r"\s*(date|_id)(?:\s+(asc|desc))?\s*\Z", text, re.IGNORECASE)
    want = None if match is None else (match[1].lower(), (match[2] or "asc").lower() == "desc")
    assert api.sort_term(text) == want


@settings(deadline=None)
@given(texts("content://", "sms", "mms-sms", "/", "?", "#", "threadID", "recipient="))
def test_content_uri(content: ModuleType, text: str) -> None:
    for uri in (text, "content://" + text):
        match = re.match(r"content://([^/?#]*)(/[^?#]*)?(?:\?([^#]*))?\Z", uri)
        assert content.parse_content_uri(uri) == (match.groups() if match else None)
        assert content.uri_authority(uri) == (match[1] if match else "null")


@settings(deadline=None)
@given(texts("_id", "body", ":", " : ", "hex(_data)"))
def test_projection_split(content: ModuleType, text: str) -> None:
    assert content.split_projection(text) == re.split(r"\s*:\s*", text)


@settings(deadline=None)
@given(texts("select", "SELECT", "Select", "ſelect", "sel", "ect", "(", "_", "1"))
def test_the_word_select(content: ModuleType, text: str) -> None:
    assert content.has_select(text) == bool(re.search(r"\bselect\b", text, re.I))


@settings(deadline=None)
@given(texts("android:", "write_sms", "WRITE_SMS", "14", "A", "9"))
def test_op_names(privileged: ModuleType, text: str) -> None:
    name = text[len("android:") :].upper() if text.startswith("android:") else text
    want = privileged._OP_NUMBERS.get(text)
    if want is None and re.match(r"[A-Z][A-Z0-9_]*\Z", name):
        want = name
    assert privileged._op_name(text) == want


@settings(deadline=None)
@given(texts("+", "-", "0", "2147483647", "9223372036854775808", "12"))
def test_java_ints(content: ModuleType, text: str) -> None:
    for bounds in (content.INT32, content.INT64):
        ok = re.match(r"[+-]?[0-9]+\Z", text) and bounds[0] <= int(text) <= bounds[1]
        if ok:
            assert content._java_int(text, bounds) == int(text)
        else:
            with pytest.raises(content.ContentArgError):
                content._java_int(text, bounds)


@settings(deadline=None)
@given(texts("+", "-", "0", "0x", "0X", "#", "7", "8", "1f", "ff"))
def test_integer_decode(background: ModuleType, text: str) -> None:
    pattern = r"([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z"
    match = re.match(pattern, text)
    assert background._java_int_parts(text) == (match.groups() if match else None)


KEYS = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
JSON_LIKE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda inner: st.one_of(
        st.lists(inner), st.lists(inner).map(tuple), st.dictionaries(KEYS, inner)
    ),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None)
@given(JSON_LIKE)
def test_android_json_is_what_json_wrote(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    want = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"
    assert common.android_json(value) == want


@settings(max_examples=100, deadline=None)
@given(JSON_LIKE)
def test_the_fixture_holds_what_json_gave_back(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    want = json.loads(text.decode("utf-8", "surrogatepass"))
    got = _as_json_would(value)
    assert json.dumps(got) == json.dumps(want)
    assert repr(got) == repr(want)  # lists, not tuples; str keys


@pytest.mark.parametrize("bad", [b"bytes", {1, 2}, {(1, 2): "tuple key"}, [object()]])
def test_what_json_refused_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(bad)
    with pytest.raises(TypeError):
        common.android_json(bad)
    with pytest.raises(TypeError):
        _as_json_would(bad)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(), max_size=4))
def test_the_call_log_gives_back_every_argv(
    tmp_path_factory: pytest.TempPathFactory, argv: list[str]
) -> None:
    phone = FakePhone(tmp_path_factory.mktemp("log"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(common.LOG_ENV, str(phone.log_path))
        common.log_invocation("content", argv)
        common.log_invocation("rish", ["-c", "true"])
    first, second = phone.calls()
    assert (first["tool"], first["argv"], second["argv"]) == ("content", argv, ["-c", "true"])
    assert isinstance(first["t"], float) and phone.calls("rish") == [second]


LIGHT_CALLS = [
    ("getprop", "ro.build.version.sdk"),
    ("rish", "-c", "true"),
    ("su", "-c", "true"),
    ("appops", "get", "com.android.shell", "WRITE_SMS"),
    ("content", "query", "--uri", "content://sms", "--projection", "_id:body"),
    ("termux-contact-list",),
    ("termux-job-scheduler", "-p"),
    ("termux-battery-status",),
]


def test_the_light_fakes_import_no_enum(tmp_path: Path) -> None:
    """What the fakes avoid for their start-up time stays out: enum, and re, json and
    signal, which bring it (gettext too, which getopt would import)."""
    phone = FakePhone(tmp_path)
    phone.enable_privileged(rish=True, su=True)
    phone.add_contact("Anna", "+4917012345678")
    env = phone.env()
    env.update(FAKE_UID="2000", RISH_APPLICATION_ID="com.termux")
    env["PYTHONTZPATH"] = env["SMSBAK_FAKES_TZPATH"]
    for tool, *args in [*LIGHT_CALLS, ("id", "-u")]:
        script = FAKES / ("privileged-bin" if tool == "id" else "bin") / tool
        result = subprocess.run(
            [sys.executable, "-S", "-X", "importtime", str(script), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (tool, result.stderr)
        imported = {
            line.split("|")[-1].strip()
            for line in result.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "_termux_common" in imported, tool
        assert not imported & {"enum", "re", "json", "signal", "gettext"}, tool


def test_getopt_without_gettext_says_what_getopt_says() -> None:
    """import_getopt's getopt (gettext left out) words its errors as getopt does."""
    cases = [["-x"], ["--nope"], ["-l"], ["--limit"], ["--help=1"], ["--li"], ["--l"]]
    program = (
        "import sys\n"
        f"sys.path.insert(0, {str(FAKES)!r})\n"
        "if sys.argv[1] == 'fake':\n"
        "    import _termux_common\n"
        "    getopt = _termux_common.import_getopt()\n"
        "    assert 'gettext' not in sys.modules\n"
        "else:\n"
        "    import getopt\n"
        f"for args in {cases!r}:\n"
        "    try:\n"
        "        getopt.gnu_getopt(args, 'hl:', ['help', 'limit=', 'long'])\n"
        "    except getopt.GetoptError as exc:\n"
        "        print(repr((exc.msg, exc.opt)))\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-S", "-c", program, which],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for which in ("fake", "real")
    ]
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == len(cases)
