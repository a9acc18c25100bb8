"""Fixtures for real-browser tests (see README.md in this folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Before anything imports gradio (harness sets the same defaults; this guards import order).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SE_OFFLINE", "true")

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

OUTPUT_ROOT = Path(__file__).resolve().parent / "output"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives headless chromium against a served gradio app"
    )


def _unavailable(reason: str):
    # Locally a missing browser is a skip; under CI it must fail so it is never silently untested.
    if harness.ci_enabled():
        pytest.fail(f"browser tests required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole session, wrapped in harness.Browser."""
    try:
        harness.find_browser()
    except harness.BrowserUnavailable as exc:
        _unavailable(str(exc))
    b = harness.Browser.start()
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture
def serve():
    """serve(blocks_or_builder) -> url. A builder is called inside a fresh gr.Blocks.

    Every app started by the test is closed at teardown.
    """
    apps: list[harness.ServedApp] = []

    def _serve(demo_or_builder) -> str:
        app = harness.launch(demo_or_builder)
        apps.append(app)
        return app.url

    yield _serve
    for app in apps:
        app.close()


@pytest.fixture
def gradio_major() -> int:
    return harness.gradio_major()


@pytest.fixture
def screenshot(browser, tmp_path, request):
    """screenshot(name, elem_id=None) -> Path in tmp_path; also copied to output/<gradio-major>/."""

    def _shot(name: str, elem_id: str | None = None) -> Path:
        fname = name if name.endswith(".png") else f"{name}.png"
        path = browser.screenshot(tmp_path / fname, elem_id=elem_id)
        keep = OUTPUT_ROOT / str(harness.gradio_major())
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, keep / fname)
        return path

    return _shot
