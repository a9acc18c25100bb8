"""The panel in the WebUI: the script's accordion built from the WebUI's own components, its
refreshes, and the layer explorer's run.  What it shows comes from ``lib_clipskip.panel``.

Browser side (``javascript/clipskip.js``): the prompt box is watched without a server call per
keystroke; after a pause the text goes into a hidden textbox of the panel (``…_prompt``) whose
change refreshes the panel.  A hidden button (``…_refresh``) lets the script refresh it after a
model change, and the "Use N" buttons of the compatibility list set the slider.
gradio is imported only when the panel is built.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import hosts, prompt_files
from lib_clipskip.hosts.base import webui_queue_lock
from lib_clipskip.panel import AUTO_INFO, NEGATIVE_MARK, files_html, status_html, view
from lib_clipskip.values import CLIP_G_SDXL, CLIP_L_SD1, Family

log = logging.getLogger("sd-webui-clipskip")
e = html.escape


@dataclass
class Panel:
    enabled: Any
    clip_skip: Any
    clip_skip_g: Any
    status: Any
    extra: list[Any] = field(default_factory=list)
    files: Any = None
    prompt: Any = None  # hidden: the prompt box's text, pushed by javascript/clipskip.js
    refresh: Any = None  # hidden: clicked by the script after a model change
    explore: Any = None
    plot: Any = None
    schedule: Any = None  # "over the steps": a schedule text (``lib_clipskip.schedule``), empty = constant
    negative: Any = None  # the negative prompt's own value or schedule, empty = the prompt's
    remember: Any = None  # "Remember for this checkpoint" (``checkpoint_memory``)
    seen: Any = None  # gr.State: the page's last checkpoint and what was loaded from it
    plot_model: Any = None  # per browser session: the model the plot was drawn for (``model_label``)

    @property
    def inputs(self) -> list[Any]:
        """The script args, in the order the API's ``alwayson_scripts`` args use (``values.ARG_NAMES``)."""
        return [self.enabled, self.clip_skip, self.clip_skip_g, self.schedule, self.negative]


# --- layer explorer ---------------------------------------------------------------------------

_explore_lock = threading.Lock()


_MESSAGE_CLASSES = {"info": "clipskip-info", "warning": "clipskip-warning", "error": "clipskip-error"}


def _message(text: str, kind: str = "info") -> str:
    return f'<div class="clipskip-explorer-message {_MESSAGE_CLASSES[kind]}">{e(text)}</div>'


def model_label(shown: Any) -> str:
    """'SD 1.x (name of the checkpoint)': which model a plot shows."""
    return f"{shown.family_label} ({shown.model_name})" if shown.model_name else shown.family_label


def explore(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None, adapter: Any = None) -> str:
    """One text-encoder pass on the loaded model for ``prompt``; the plot as HTML. Never raises."""
    return explore_plot(enabled, clip_skip, clip_skip_g, prompt, adapter)[0]


def explore_plot(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None,
                 adapter: Any = None) -> tuple[str, str | None]:
    """(the plot's HTML, the ``model_label`` it was drawn for; None for a message). Never raises."""
    html_text, shown = _explore(enabled, clip_skip, clip_skip_g, prompt, adapter)
    return html_text, model_label(shown) if shown is not None else None


def _explore(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None, adapter: Any) -> tuple[str, Any]:
    from lib_clipskip import explorer
    from lib_clipskip.compat.prompt import strip_extra_networks

    adapter = adapter or hosts.current()
    shared = adapter.shared()
    state = getattr(shared, "state", None)
    if getattr(state, "job_count", 0) not in (0, None):
        return _message("A generation is running; the layer explorer runs when it has finished.", "warning"), None
    sd_model = adapter.current_model()
    if sd_model is None:
        return _message("No model is loaded: load a checkpoint, then try again.", "warning"), None
    host_lock = webui_queue_lock()
    if not _explore_lock.acquire(blocking=False):
        return _message("The layer explorer is already running.", "warning"), None
    try:
        if host_lock is not None and not host_lock.acquire(blocking=False):
            return _message("A generation is running; the layer explorer runs when it has finished.", "warning"), None
        try:
            shown = view(enabled, clip_skip, clip_skip_g, prompt, adapter=adapter, sd_model=sd_model, with_files=False)
            if shown.family is Family.OTHER:
                return _message(next((n for n in shown.notes if "no effect" in n),
                                     f"CLIP skip has no effect on {shown.family_label}: nothing to explore."), "warning"), None
            text = strip_extra_networks(prompt or "").strip()
            started = time.perf_counter()
            networks = adapter.loaded_networks()
            states = adapter.layer_states(sd_model, text)
            order = [line.name for line in shown.lines]
            curves = [explorer.curve(states[name].states, states[name].slot.spec, states[name].final_norm,
                                     current=shown.value_of(name)) for name in order if name in states]
            took = time.perf_counter() - started
        finally:
            if host_lock is not None:
                host_lock.release()
    except Exception as error:  # a plot is never worth a traceback in the user's face
        log.exception("CLIP skip: the layer explorer failed")
        return _message(f"The layer explorer failed: {type(error).__name__}: {error}", "error"), None
    finally:
        _explore_lock.release()
    if not curves:
        return _message("This model's text encoder cannot be inspected layer by layer on this host.", "warning"), None
    shown_prompt = text if len(text) <= 80 else text[:77] + "…"
    summaries = "".join(f"<li>{e(explorer.summary(c))}</li>" for c in curves)
    return (f'<div class="clipskip-explorer-result"><div class="clipskip-dim">“{e(shown_prompt) or "(empty prompt)"}” · '
            f"one pass of {e(model_label(shown))}'s text encoder{e(_networks_text(networks))}, in {took * 1000:.0f} ms. "
            "Higher = this value conditions the image much like the last layer.</div>"
            f"{explorer.svg(curves)}<ul class=\"clipskip-explorer-notes\">{summaries}</ul></div>"), shown


def _networks_text(networks: list[str] | None) -> str:
    if networks is None:
        return " as the host has it loaded now (with any LoRAs the last generation left applied)"
    if not networks:
        return ", without LoRAs"
    shown = ", ".join(networks[:5]) + ("…" if len(networks) > 5 else "")
    return f", with the LoRAs the last generation left applied ({shown})"


# --- gradio -----------------------------------------------------------------------------------


def refresh_outputs(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None,
                    slider_id: str = "", accordion_id: str = "", schedule: Any = "", negative: Any = "",
                    messages: tuple[str, ...] = (), panel_switch: bool | None = None,
                    plot_model: str | None = None) -> tuple:
    """(status HTML, files HTML, clip_skip update, clip_skip_g update, plot update, plot_model) for one
    refresh; ``plot_model``: the model the explorer's plot shows, if any. Never raises."""
    import gradio as gr

    try:
        shown = view(enabled, clip_skip, clip_skip_g, prompt, name_wait=prompt_files.PANEL_NAME_WAIT,
                     schedule=schedule, negative=negative)
        shown.infos[:0] = list(messages)
        shown.panel_switch = panel_switch
        plot, plot_model = stale_plot(plot_model, shown)
        return (status_html(shown, slider_id, accordion_id), files_html(shown, slider_id, accordion_id),
                gr.update(interactive=shown.clip_skip_interactive, maximum=shown.clip_skip_maximum),
                gr.update(visible=shown.g_visible), plot, plot_model)
    except Exception as error:
        log.exception("CLIP skip: could not update the panel")
        return (_message(f"The panel could not update: {type(error).__name__}: {error}", "error"), "",
                gr.update(), gr.update(), gr.update(), plot_model)


def stale_plot(plot_model: str | None, shown: Any) -> tuple[Any, str | None]:
    """(plot update, plot_model): after a checkpoint change the plot of the last model goes, with a
    line saying so (an SD 1.x plot under an SDXL model line would read as SDXL's)."""
    import gradio as gr

    if plot_model is None or shown.loading or plot_model == model_label(shown):
        return gr.update(), plot_model
    text = (f"The plot was drawn for {plot_model}; the model is now {model_label(shown)}. "
            "Press the button to see this model's layers.")
    return gr.update(value=_message(text)), None


def panel_values(enabled: Any, clip_skip: Any, clip_skip_g: Any, schedule: Any, negative: Any) -> tuple:
    """The panel's values, normalised the way ``checkpoint_memory.on_checkpoint`` compares them."""
    def number(raw: Any) -> float:
        try:
            return float(raw or 0)
        except (TypeError, ValueError):
            return -1.0

    return bool(enabled), number(clip_skip), number(clip_skip_g), str(schedule or "").strip(), str(negative or "").strip()


def follow_checkpoint(seen: Any, current: tuple, adapter: Any = None) -> tuple[Any, tuple | None]:
    """On a refresh: (the page's new state, values to load) when the selected checkpoint changed
    since this page's last refresh and it has remembered values (Settings toggle on). Never raises."""
    from lib_clipskip import checkpoint_memory, settings

    try:
        adapter = adapter or hosts.current()
        checkpoint = adapter.checkpoint_file() if adapter.current_model() is not None else None
        memory, _ = checkpoint_memory.load(checkpoint)
        options = settings.current()
        return checkpoint_memory.on_checkpoint(seen, checkpoint, memory, current,
                                               options.enabled and options.remember_per_checkpoint)
    except Exception:
        log.exception("CLIP skip: could not read the values remembered for this checkpoint")
        return seen, None


def remember_now(current: tuple, adapter: Any = None) -> str:
    """The panel's "Remember for this checkpoint": store ``current`` (``panel_values``); the message."""
    from lib_clipskip import checkpoint_memory

    try:
        adapter = adapter or hosts.current()
        checkpoint = adapter.checkpoint_file() if adapter.current_model() is not None else None
        return checkpoint_memory.remember(checkpoint, dict(zip(("clip_skip", "clip_skip_g", "schedule", "clip_skip_negative"),
                                                               current[1:])))[1]
    except Exception as error:
        log.exception("CLIP skip: could not remember the values for this checkpoint")
        return f"Not remembered: {type(error).__name__}: {error}"


class RefreshTickets:
    """Per browser session, the newest refresh.  gradio 3 answers unqueued events in parallel
    threads, so a slow answer to an older prompt could otherwise land after the newer one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = 0
        self._newest: dict[str, int] = {}

    @staticmethod
    def _session(request: Any) -> str:
        return str(getattr(request, "session_hash", None) or "")

    def take(self, request: Any) -> int:
        with self._lock:
            self._counter += 1
            self._newest[self._session(request)] = self._counter
            if len(self._newest) > 1024:  # sessions come and go; keep the newest ones
                for key in list(self._newest)[:512]:
                    del self._newest[key]
            return self._counter

    def is_newest(self, request: Any, ticket: int) -> bool:
        with self._lock:
            return self._newest.get(self._session(request), ticket) == ticket


def build(elem_id: Callable[[str], str], input_accordion: Callable[..., Any], title: str, tab: str = "txt2img") -> Panel:
    import gradio as gr

    tab_class = f"clipskip-tab-{tab}"
    with input_accordion(False, label=title, elem_id=elem_id("enabled")) as enabled:
        status = gr.HTML(value="", elem_id=elem_id("status"), elem_classes=["clipskip-status", tab_class])
        with gr.Row(elem_classes=["clipskip-row"]):
            # labels unique in the tab: the hosts save UI defaults in ui-config.json by label;
            # float values: the API's infotext field casts a pasted value to the type of this one
            clip_skip = gr.Slider(
                minimum=0, maximum=CLIP_L_SD1.depth, step=0.05, value=0.0, label="CLIP skip value",
                info=f"1 = last layer, 2 = penultimate; fractions blend neighbouring layers. {AUTO_INFO}",
                elem_id=elem_id("clip_skip"), elem_classes=["clipskip-slider"])
            clip_skip_g = gr.Slider(
                minimum=0, maximum=CLIP_G_SDXL.depth, step=0.05, value=0.0, label="SDXL OpenCLIP-G",
                info="SDXL only. 0 = same as CLIP skip (or the Settings default when that is auto)",
                elem_id=elem_id("clip_skip_g"), elem_classes=["clipskip-slider"], visible=False)
        with gr.Row(elem_classes=["clipskip-row"]):
            schedule = gr.Textbox(
                value="", lines=1, max_lines=1, label="CLIP skip over the steps",
                placeholder="empty = constant; 3..1 ramps from 3 to 1, 3,2,2,1 spreads a list, l=3..2:g=2 per encoder",
                elem_id=elem_id("schedule"), elem_classes=["clipskip-schedule"])
            negative = gr.Textbox(
                value="", lines=1, max_lines=1, label="Negative prompt CLIP skip",
                placeholder="empty = same as the prompt; a value (1) or a schedule (2..1)",
                elem_id=elem_id("negative"), elem_classes=["clipskip-negative"])
        files = gr.HTML(value="", elem_id=elem_id("files"), elem_classes=["clipskip-files-box"])
        with gr.Accordion("Layer explorer", open=False, elem_id=elem_id("explorer"), elem_classes=["clipskip-explorer"]):
            explore_button = gr.Button("How does each layer see this prompt?", elem_id=elem_id("explore"),
                                       elem_classes=["clipskip-explore", tab_class])
            plot = gr.HTML(value="", elem_id=elem_id("plot"), elem_classes=["clipskip-plot-box"])
            plot_model = gr.State(None)
        prompt = gr.Textbox(value="", show_label=False, lines=1, elem_id=elem_id("prompt"),
                            elem_classes=["clipskip-hidden", "clipskip-prompt-sink", tab_class])
        refresh = gr.Button("CLIP skip refresh", elem_id=elem_id("refresh"),
                            elem_classes=["clipskip-hidden", "clipskip-refresh", tab_class])
        remember = gr.Button("Remember for this checkpoint", size="sm", elem_id=elem_id("remember"),
                             elem_classes=["clipskip-remember", tab_class])
        seen = gr.State(None)  # this page's last checkpoint and what was loaded from it (follow_checkpoint)

    slider_id, accordion_id = elem_id("clip_skip"), elem_id("enabled")

    latest = RefreshTickets()

    def on_refresh(enabled_value, clip_skip_value, clip_skip_g_value, prompt_value, schedule_value, negative_value,
                   seen_value, plot_model_value, request):
        ticket = latest.take(request)
        current = panel_values(enabled_value, clip_skip_value, clip_skip_g_value, schedule_value, negative_value)
        seen_before = seen_value
        seen_value, loaded = follow_checkpoint(seen_value, current)
        values = loaded or current
        switch = loaded[0] if loaded is not None and loaded[0] != current[0] else None
        result = refresh_outputs(*values[:3], prompt_value, slider_id, accordion_id, *values[3:], panel_switch=switch,
                                 plot_model=plot_model_value)
        if not latest.is_newest(request, ticket):  # a later refresh of this page is under way or done: keep its answer
            # gr.State outputs get their own values back (an update dict would become the state)
            return [*(gr.update() for _ in range(5)), plot_model_value, gr.update(), gr.update(), seen_before]
        if loaded is None:
            return [*result, gr.update(), gr.update(), seen_value]
        status, files, clip_skip_update, clip_skip_g_update, plot, plot_model_now = result
        return [status, files, {**clip_skip_update, "value": values[1]}, {**clip_skip_g_update, "value": values[2]},
                plot, plot_model_now, gr.update(value=values[3]), gr.update(value=values[4]), seen_value]

    on_refresh.__annotations__["request"] = gr.Request  # gradio injects it by this (real, not postponed) annotation

    def on_remember(enabled_value, clip_skip_value, clip_skip_g_value, prompt_value, schedule_value, negative_value,
                    seen_value, _plot_model_value):
        current = panel_values(enabled_value, clip_skip_value, clip_skip_g_value, schedule_value, negative_value)
        message = remember_now(current)
        if isinstance(seen_value, dict) and message.startswith("Remembered"):
            seen_value = {**seen_value, "loaded": current}  # these are now the checkpoint's values
        status = refresh_outputs(*current[:3], prompt_value, slider_id, accordion_id, *current[3:], messages=(message,))[0]
        return status, seen_value

    inputs = [enabled, clip_skip, clip_skip_g, prompt]
    all_values = [enabled, clip_skip, clip_skip_g, prompt, schedule, negative, seen, plot_model]
    # not ``enabled``: gradio 4 rebuilds an updated component by its class, and the hosts'
    # InputAccordion registers an event in __init__ (Forge ``ui_components.py:130``); the status
    # HTML asks javascript/clipskip.js to tick the accordion instead (``View.panel_switch``)
    outputs = [status, files, clip_skip, clip_skip_g, plot, plot_model, schedule, negative, seen]
    if int(gr.__version__.split(".")[0]) >= 4:  # one refresh at a time, in order: a stale answer never lands last
        ordering = {"queue": True, "concurrency_id": f"clipskip_panel_{tab}", "concurrency_limit": 1}
    else:  # gradio 3: straight to the server, never behind a generation in the queue
        ordering = {"queue": False}
    for trigger in (enabled.change, clip_skip.change, clip_skip_g.change, prompt.change, schedule.change, negative.change,
                    refresh.click):
        trigger(fn=on_refresh, inputs=all_values, outputs=outputs, show_progress="hidden", **ordering)
    remember.click(fn=on_remember, inputs=all_values, outputs=[status, seen], show_progress="hidden", **ordering)
    explore_button.click(fn=explore_ui, inputs=inputs, outputs=[plot, plot_model], show_progress="minimal")
    return Panel(enabled, clip_skip, clip_skip_g, status, files=files, prompt=prompt, refresh=refresh,
                 explore=explore_button, plot=plot, schedule=schedule, negative=negative, remember=remember, seen=seen,
                 plot_model=plot_model)


def keep_value_types(built: Panel) -> None:
    """Make the sliders' values floats again after the host applied ``ui-config.json``.

    Both hosts cast a value pasted through the API's ``infotext`` field to the type of the
    component's value (A1111 ``modules/api/api.py:386``), and a saved ``0`` (what "Apply" of the
    Settings' UI defaults writes for a slider at 0) would turn a pasted 2.5 into 2.
    """
    for slider in (built.clip_skip, built.clip_skip_g):
        value = getattr(slider, "value", None)
        if isinstance(value, (int, float)) and not isinstance(value, float):
            slider.value = 0.0 if isinstance(value, bool) else float(value)


def explore_ui(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None) -> tuple[str, str | None]:
    return explore_plot(enabled, clip_skip, clip_skip_g, (prompt or "").partition(NEGATIVE_MARK)[0])
