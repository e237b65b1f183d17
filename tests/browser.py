"""Headless Chromium for the tests, driven over the DevTools protocol (websocket-client).

One browser per test module (starting one costs about a second); each test opens
pages in it. Only file:// pages are opened and every network feature Chromium has
that could call home is switched off on its command line.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--disable-features=MediaRouter,OptimizationHints,Translate",
    "--window-size=420,900",
    "--remote-debugging-port=0",
]


def artifacts_dir() -> Path:
    """Where screenshots are kept: $SMSBAK_TEST_ARTIFACTS, else test-artifacts/ (gitignored)."""
    default = Path(__file__).resolve().parent.parent / "test-artifacts"
    path = Path(os.environ.get("SMSBAK_TEST_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    def __init__(self, chromium: str) -> None:
        import websocket  # the test extra's websocket-client

        self.profile = Path(tempfile.mkdtemp(prefix="smsbak-chromium-"))
        self.process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._websocket = websocket
        self._ws: Any = None
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    @property
    def ws(self) -> Any:
        """The DevTools connection, made on first use: Chromium starts (about a second)
        while the caller does other work, such as building the site it will open."""
        if self._ws is None:
            port_file = self.profile / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("headless chromium did not start")
                time.sleep(0.05)
            port, path = port_file.read_text().split()[:2]
            self._ws = self._websocket.create_connection(
                f"ws://127.0.0.1:{port}{path}", suppress_origin=True, timeout=30
            )
        return self._ws

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == number:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._event(answer)

    def _event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":  # never leave one open
            number = next(self.ids)
            self.ws.send(
                json.dumps(
                    {
                        "id": number,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                        "sessionId": event.get("sessionId", ""),
                    }
                )
            )

    def wait_event(self, method: str, session: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._event(json.loads(self.ws.recv()))
            except Exception as error:  # websocket timeout
                if "timed out" not in str(error).lower():
                    raise
            finally:
                self.ws.settimeout(30)
        raise TimeoutError(method)

    def page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        return page

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def goto(self, url: str) -> float:
        """Open ``url`` and wait for its load event; returns the seconds it took."""
        started = time.monotonic()
        self.send("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session)
        return time.monotonic() - started

    def eval(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(expression)

    def type(self, selector: str, text: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, *, whole_page: bool = True) -> None:
        """A PNG of the whole page, or of what the window shows (``whole_page=False``:
        a phone's screen; a long page at a phone's pixel density takes seconds whole)."""
        data = self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": whole_page}
        )
        path.write_bytes(base64.b64decode(data["data"]))

    def dialogs(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.browser.events
            if e.get("method") == "Page.javascriptDialogOpening"
            and e.get("sessionId") == self.session
        ]

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
