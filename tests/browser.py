"""A real browser for the console's tests: Debian's chromium driven by Playwright for Python.

Playwright's own browser download cannot work here (no internet on a gateway or in CI), so it is
launched with `executable_path`; a missing chromium fails the test with the command that installs
it, never a skip. Screenshots go to test-artefacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

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


def artefact(name: str) -> Path:
    """Where to save a screenshot named `name`."""
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS / name
