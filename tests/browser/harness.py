"""Browser-test harness: serve a gradio Blocks on loopback and drive Debian's
chromium through selenium.  Works on gradio 3.41.2 (A1111) and 4.40.0 (Forge).

Nothing here downloads anything: the driver path is always given explicitly
(so selenium-manager is never consulted) and SE_OFFLINE forbids it anyway.
"""

from __future__ import annotations

import logging
import os

# Must happen before gradio is imported anywhere, or gradio phones home on import/launch.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SE_OFFLINE", "true")
# A stray proxy setting would route gradio's own startup check of 127.0.0.1 through it.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver",)


class BrowserUnavailable(RuntimeError):
    """chromium, chromedriver or selenium is missing."""


def ci_enabled() -> bool:
    """True when running under CI, where a missing browser is an error, not a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _first_existing(env_var: str, candidates: tuple[str, ...], name: str) -> str | None:
    override = os.environ.get(env_var)
    if override:
        return override if os.path.isfile(override) else None
    for path in candidates:
        if os.path.isfile(path):
            return path
    return shutil.which(name)


def find_browser() -> tuple[str, str]:
    """Return (chromium, chromedriver) paths or raise BrowserUnavailable."""
    chromium = _first_existing("CLIPSKIP_CHROMIUM", CHROMIUM_CANDIDATES, "chromium")
    driver = _first_existing(
        "CLIPSKIP_CHROMEDRIVER", CHROMEDRIVER_CANDIDATES, "chromedriver"
    )
    missing = [
        n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p
    ]
    if missing:
        raise BrowserUnavailable(
            f"{' and '.join(missing)} not found; install Debian packages: "
            "apt-get install -y chromium chromium-driver"
        )
    try:
        import selenium  # noqa: F401
    except ImportError as exc:
        raise BrowserUnavailable(
            "python package selenium is not installed (pip install selenium)"
        ) from exc
    return chromium, driver  # type: ignore[return-value]


def gradio_major() -> int:
    import gradio as gr

    return int(gr.__version__.split(".")[0])


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_theme():
    """Default theme with system fonts: the stock theme pulls Google Fonts, which
    cannot load here and would only slow page rendering."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


@dataclass
class ServedApp:
    demo: Any
    url: str
    port: int

    def close(self) -> None:
        try:
            self.demo.close()
        except Exception as exc:
            logging.getLogger(__name__).warning("closing gradio app failed: %s", exc)


def build_blocks(builder: Callable[[], Any], **blocks_kwargs):
    """Open a gr.Blocks, let `builder` add components inside it, return the Blocks."""
    import gradio as gr

    blocks_kwargs.setdefault("theme", offline_theme())
    blocks_kwargs.setdefault("analytics_enabled", False)
    with gr.Blocks(**blocks_kwargs) as demo:
        builder()
    return demo


def launch(demo_or_builder: Any, attempts: int = 5) -> ServedApp:
    """Launch a Blocks (or a builder callable) on 127.0.0.1 in gradio's background thread."""
    import gradio as gr

    demo = (
        demo_or_builder
        if isinstance(demo_or_builder, gr.Blocks)
        else build_blocks(demo_or_builder)
    )
    demo.queue()
    last_exc: Exception | None = None
    for _ in range(attempts):
        # free_port() can race with another process; gradio raises OSError then, so retry.
        port = free_port()
        try:
            demo.launch(
                server_name="127.0.0.1",
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
                share=False,
                inbrowser=False,
                show_error=True,
            )
        except OSError as exc:
            last_exc = exc
            continue
        return ServedApp(demo=demo, url=f"http://127.0.0.1:{port}/", port=port)
    raise RuntimeError(f"could not start gradio after {attempts} attempts: {last_exc}")


# --------------------------------------------------------------------------- browser

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes tabs
    "--disable-extensions",
    "--force-device-scale-factor=1",
    # Only loopback is reachable; fail every other lookup at once instead of waiting on DNS.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)

# JS: set an <input>'s value the way a user edit would, so Svelte's bind:value sees it.
_JS_SET_INPUT = """
const el = arguments[0], v = arguments[1];
const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, v);
el.dispatchEvent(new Event('input', {bubbles: true}));
el.dispatchEvent(new Event('change', {bubbles: true}));
"""

# JS: gradio has mounted when its container exists and no full-page loader remains.
_JS_LOADED = """
const root = document.querySelector('gradio-app');
const host = (root && root.shadowRoot) ? root.shadowRoot : document;
const c = host.querySelector('.gradio-container');
if (!c) return false;
// gradio 4 keeps a '.main' wrapper; gradio 3 renders components straight into .contain
return !!c.querySelector('.contain, .main') && !!c.querySelector('[id^="component-"], .block');
"""


# JS: true while any output's status tracker is showing (an event is pending/generating).
# Same markup in 3.41 and 4.40: <div class="wrap {default|center} {full|minimal|hidden} hide?">.
# Trackers with show_progress="hidden" never show, so those events are invisible here.
_JS_BUSY = """
return Array.from(document.querySelectorAll('.wrap.full:not(.hide), .wrap.minimal:not(.hide)'))
  .some(e => !/error/i.test(e.innerText || ''));
"""


@dataclass
class Browser:
    """Thin helpers over a selenium Chrome driver, addressed by gradio elem_id."""

    driver: Any
    timeout: float = 20.0
    _profile_dir: str = field(default="", repr=False)

    # --- lifecycle
    @classmethod
    def start(
        cls, window: tuple[int, int] = (1280, 1024), timeout: float = 20.0
    ) -> Browser:
        chromium, chromedriver = find_browser()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        profile = tempfile.mkdtemp(prefix="clipskip-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        opts.add_argument(f"--window-size={window[0]},{window[1]}")
        # Explicit driver path: selenium-manager is skipped entirely.
        service = Service(executable_path=chromedriver)
        driver = webdriver.Chrome(service=service, options=opts)
        driver.set_page_load_timeout(60)
        return cls(driver=driver, timeout=timeout, _profile_dir=profile)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            if self._profile_dir:
                shutil.rmtree(self._profile_dir, ignore_errors=True)

    # --- waiting primitives
    def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float | None = None,
        message: str | Callable[[], str] = "condition not met",
        poll: float = 0.1,
    ) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        last_exc: Exception | None = None
        while True:
            try:
                result = predicate()
                if result:
                    return result
            except Exception as exc:
                last_exc = exc
            if time.monotonic() >= deadline:
                msg = message() if callable(message) else message
                if last_exc is not None:
                    msg += f" (last error: {type(last_exc).__name__}: {last_exc})"
                raise AssertionError(msg)
            time.sleep(poll)

    def wait_idle(self, timeout: float | None = None, settle: float = 0.15) -> None:
        """Wait until no gradio event is running (seen idle twice, `settle` s apart).

        gradio 3.41 silently DROPS a trigger while the same event fn is still pending, so act
        only when idle; gradio 4 queues it instead (trigger_mode="always_last").
        """

        def idle_twice():
            if self.driver.execute_script(_JS_BUSY):
                return False
            time.sleep(settle)
            return not self.driver.execute_script(_JS_BUSY)

        self.wait_until(
            idle_twice,
            timeout,
            message="gradio stayed busy (a status tracker kept showing)",
        )

    # --- navigation
    def open(self, url: str, timeout: float | None = None) -> None:
        self.driver.get(url)
        self.wait_until(
            lambda: self.driver.execute_script(_JS_LOADED),
            timeout,
            message=f"gradio app at {url} did not finish loading",
        )

    # --- lookup
    def _css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def find(self, elem_id: str, timeout: float | None = None):
        """The element carrying gradio's elem_id (a Block wrapper, or the <button> itself)."""
        return self.wait_until(
            lambda: (self._css(f"#{elem_id}") or [None])[0],
            timeout,
            message=f"no element with id #{elem_id}",
        )

    def find_in(
        self,
        elem_id: str,
        selector: str,
        timeout: float | None = None,
        visible: bool = False,
    ):
        """First element matching `selector` inside #elem_id (or #elem_id itself if it matches)."""

        # Prefix every comma-separated part; class/attribute parts may also match #elem_id itself
        # (gradio puts elem_id directly on a Button, on the wrapper div for everything else).
        parts = [p.strip() for p in selector.split(",") if p.strip()]
        scoped = [f"#{elem_id}{p}" for p in parts if p.startswith((".", "[", ":"))]
        scoped += [f"#{elem_id} {p}" for p in parts]
        css = ", ".join(scoped)

        def probe():
            for el in self._css(css):
                if not visible or el.is_displayed():
                    return el
            return None

        return self.wait_until(
            probe,
            timeout,
            message=lambda: (
                f"no {'visible ' if visible else ''}'{selector}' inside #{elem_id}; "
                f"its text: {self._safe_text(elem_id)!r}"
            ),
        )

    def is_visible(self, elem_id: str) -> bool:
        els = self._css(f"#{elem_id}")
        return bool(els) and els[0].is_displayed()

    def wait_visible(self, elem_id: str, timeout: float | None = None) -> None:
        self.wait_until(
            lambda: self.is_visible(elem_id),
            timeout,
            message=f"#{elem_id} never became visible",
        )

    # --- reading
    def text(self, elem_id: str) -> str:
        # innerText is what a user sees; textContent is the fallback for collapsed parents.
        el = self.find(elem_id)
        return self.driver.execute_script(
            "const e = arguments[0]; return (e.innerText || e.textContent || '').trim();",
            el,
        )

    def _safe_text(self, elem_id: str) -> str:
        try:
            return self.text(elem_id)
        except Exception as exc:
            return f"<unreadable: {type(exc).__name__}>"

    def value(self, elem_id: str) -> str:
        """Current value of the textbox / number input under #elem_id."""
        return self._text_input(elem_id).get_attribute("value") or ""

    def wait_for_text(
        self, elem_id: str, needle: str, timeout: float | None = None
    ) -> str:
        """Wait until `needle` is in the element's text; assert with that text on timeout."""

        def found() -> str | None:
            t = self.text(elem_id)
            return t if needle in t else None

        return self.wait_until(
            found,
            timeout,
            message=lambda: (
                f"text {needle!r} did not appear in #{elem_id} within "
                f"{self.timeout if timeout is None else timeout}s; "
                f"element text was: {self._safe_text(elem_id)!r}"
            ),
        )

    def wait_for_no_text(
        self, elem_id: str, needle: str, timeout: float | None = None
    ) -> str:
        def gone() -> str | None:
            t = self.text(elem_id)
            return None if needle in t else (t or " ")

        return self.wait_until(
            gone,
            timeout,
            message=lambda: (
                f"text {needle!r} still in #{elem_id}; element text was: {self._safe_text(elem_id)!r}"
            ),
        )

    # --- acting
    def _require_enabled(self, el, elem_id: str, timeout: float | None) -> None:
        # gradio marks a component non-interactive (inputs get `disabled`) when no event uses it
        # as an input, unless interactive=True is passed; say so instead of a vague timeout.
        self.wait_until(
            lambda: el.is_enabled(),
            timeout,
            message=(
                f"#{elem_id} is disabled: pass interactive=True or use it as an event input"
            ),
        )

    def _scroll_into_view(self, el) -> None:
        self.driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center'});", el
        )

    def click(
        self, elem_id: str, selector: str | None = None, timeout: float | None = None
    ) -> None:
        el = (
            self.find_in(elem_id, selector, timeout, visible=True)
            if selector
            else self.find(elem_id, timeout)
        )
        self.wait_idle(timeout)
        self._scroll_into_view(el)
        self.wait_until(
            lambda: el.is_displayed() and el.is_enabled(),
            timeout,
            message=f"#{elem_id} not clickable",
        )
        el.click()

    def accordion_is_open(self, elem_id: str) -> bool:
        # gradio 3.41: <div class="label-wrap open">; 4.40: <button class="label-wrap open">
        head = self.find_in(elem_id, ".label-wrap")
        return "open" in (head.get_attribute("class") or "").split()

    def open_accordion(self, elem_id: str, timeout: float | None = None) -> None:
        if not self.accordion_is_open(elem_id):
            self.click(elem_id, ".label-wrap", timeout)
        self.wait_until(
            lambda: self.accordion_is_open(elem_id),
            timeout,
            message=f"accordion #{elem_id} did not open",
        )

    def set_checkbox(
        self, elem_id: str, checked: bool = True, timeout: float | None = None
    ) -> None:
        box = self.find_in(elem_id, "input[type=checkbox]", timeout)
        self._require_enabled(box, elem_id, timeout)
        self.wait_idle(timeout)
        if box.is_selected() != checked:
            self._scroll_into_view(box)
            box.click()
        self.wait_until(
            lambda: box.is_selected() == checked,
            timeout,
            message=f"checkbox #{elem_id} did not become {checked}",
        )

    def _text_input(self, elem_id: str, timeout: float | None = None):
        # Textbox: <textarea> (both versions; lines=1 too) or <input type=text> for type="password"/"email".
        return self.find_in(
            elem_id,
            "textarea, input[type=text], input[type=number], input[type=password], input[type=email], input:not([type])",
            timeout,
            visible=True,
        )

    def type_text(
        self, elem_id: str, text: str, clear: bool = True, timeout: float | None = None
    ) -> None:
        """Type into the Textbox under #elem_id with real key events."""
        from selenium.webdriver.common.keys import Keys

        box = self._text_input(elem_id, timeout)
        self._require_enabled(box, elem_id, timeout)
        self.wait_idle(timeout)
        self._scroll_into_view(box)
        box.click()
        if clear:
            # element.clear() bypasses the input event Svelte listens to; select-all + delete does not.
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.DELETE)
        if not text:
            return
        # Every keystroke fires .change; on gradio 3 the ones arriving while the previous run is
        # pending are dropped, so the final value could be lost. Type the last key when idle.
        if len(text) > 1:
            box.send_keys(text[:-1])
            self.wait_idle(timeout)
        box.send_keys(text[-1])

    def set_textbox(
        self, elem_id: str, text: str, timeout: float | None = None
    ) -> None:
        """Set a Textbox in one input event (no per-keystroke .change storms)."""
        box = self._text_input(elem_id, timeout)
        self._require_enabled(box, elem_id, timeout)
        self.wait_idle(timeout)
        self.driver.execute_script(_JS_SET_INPUT, box, text)
        self.driver.execute_script(
            "arguments[0].dispatchEvent(new Event('blur'));", box
        )

    def set_slider(
        self, elem_id: str, value: float, timeout: float | None = None
    ) -> None:
        """Set a Slider through its number box: one input event, then blur (gradio clamps on blur).

        Typing digit by digit would fire .change for every intermediate value ("1", "12").
        """
        num = self.find_in(elem_id, "input[type=number]", timeout, visible=True)
        self._require_enabled(num, elem_id, timeout)
        self.wait_idle(timeout)
        self._scroll_into_view(num)
        self.driver.execute_script(_JS_SET_INPUT, num, str(value))
        self.driver.execute_script(
            "arguments[0].dispatchEvent(new Event('blur'));", num
        )
        want = float(value)
        self.wait_until(
            lambda: (
                abs(
                    float(
                        self.find_in(elem_id, "input[type=range]").get_attribute(
                            "value"
                        )
                    )
                    - want
                )
                < 1e-9
            ),
            timeout,
            message=lambda: f"slider #{elem_id} range did not move to {value}",
        )

    # --- pictures
    def screenshot(self, path: str | os.PathLike, elem_id: str | None = None) -> Path:
        """PNG of the window, or of just #elem_id."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if elem_id:
            el = self.find(elem_id)
            self._scroll_into_view(el)
            ok = el.screenshot(str(path))
        else:
            ok = self.driver.save_screenshot(str(path))
        if not ok or not path.is_file():
            raise AssertionError(f"screenshot to {path} failed")
        return path

    def fit_window_to_page(self, width: int = 1280, max_height: int = 4000) -> None:
        """Grow the window so a full-page screenshot is not cut at the fold."""
        # Measure the lowest component, not scrollHeight: .gradio-container/.contain stretch to
        # 100vh, so their size would just echo (and keep growing with) the current window.
        need, chrome = self.driver.execute_script(
            "const bs = Array.from(document.querySelectorAll('.contain .block, .contain button'));"
            "const b = bs.reduce((m, e) => Math.max(m, e.getBoundingClientRect().bottom), 0);"
            "return [Math.ceil(b + window.scrollY), window.outerHeight - window.innerHeight];"
        )
        # +70 leaves room for gradio's footer under the last component.
        self.driver.set_window_size(
            width, min(max(int(need) + 70 + int(chrome), 300), max_height)
        )
