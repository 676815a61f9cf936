"""A real browser for the console's tests: Debian's chromium driven by Playwright for Python.

Playwright's own browser download cannot work here (no internet on a gateway or in CI), so it is
launched with `executable_path`; a missing chromium fails the test with the command that installs
it, never a skip. Screenshots go to test-artefacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artefacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError(
            "chromium is missing: apt-get install -y --no-install-recommends chromium fonts-noto-cjk"
        )
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for the duration of the block."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(
    page: Page, token: str, path: str = "/console/", timeout_ms: float | None = None
) -> None:
    """Open `path`, which asks for a token, paste `token` and wait to land on `path`."""
    page.goto(path)
    page.fill("#token", token)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"**{path}*", timeout=timeout_ms)


def artefact(name: str) -> Path:
    """Where to save a screenshot named `name`."""
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS / name


class TcpProxy:
    """A TCP relay in front of a server that a test can cut and restore: a real network drop
    for the browser (open connections reset, new ones closed at once), unlike the browser's own
    offline switch, which leaves an open event stream alone."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._down = False
        self._closed = False
        # cleared by `silence()`: bytes and new connections wait, as packets do on a dead link
        self._flowing = threading.Event()
        self._flowing.set()
        self._held: list[socket.socket] = []  # connections accepted while silent
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def restore(self) -> None:
        self._down = False
        with self._lock:
            held, self._held = self._held, []
        self._flowing.set()
        for client in held:
            # on a real cut their SYN never arrived; relaying them now could hand the server a
            # stale CONNECT long after its client gave up (and take over its live session)
            client.close()

    def silence(self) -> None:
        """A silent network cut (a pulled cable, a dead switch): nothing is relayed and nothing
        reset. Open connections hang until `restore()`, when what they held moves on, as TCP
        would retransmit it; new ones hang and are then closed (their SYN never got through).
        Each end learns of the cut only by its own timers."""
        self._flowing.clear()

    def cut(self) -> None:
        """Reset every open connection; new ones are closed at once until `restore()`."""
        self._down = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        self._closed = True
        self._flowing.set()  # pipes waiting on a silence end with their sockets
        with self._lock:
            held, self._held = self._held, []
        for client in held:
            client.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._down:
                client.close()
                continue
            if not self._flowing.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._flowing.wait()
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # read just before a silence: held with the rest
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
