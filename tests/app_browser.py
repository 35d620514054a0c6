"""Helpers of ``tests/test_app.py``: serve the web app on a free loopback port, launch Debian's chromium."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium_or_skip() -> str:
    """The chromium executable, or skip the test saying how to get it (Playwright's download cannot work here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (the browser test drives Debian's chromium)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        pytest.skip('gradio is not installed: pip install -e ".[app]"')
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not on PATH: apt-get install -y chromium (.ci/run does; `playwright install` is "
                    "not used)")
    return executable


@contextlib.contextmanager
def served_app(**kwargs) -> Iterator[tuple[str, object]]:
    """Serve the app in this process (Gradio's server thread) on a free 127.0.0.1 port; yield ``(url, demo)``."""
    from diffhdr_diffusers.app import launch

    demo, url = launch(host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True, **kwargs)
    try:
        yield url, demo
    finally:
        demo.close()
        demo.session_folders.close()


@contextlib.contextmanager
def browser_page(executable: str, url: str) -> Iterator[tuple[object, list[str]]]:
    """A headless chromium page; yields ``(page, requests)`` where ``requests`` collects every URL it fetched."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            yield page, requests
        finally:
            browser.close()
