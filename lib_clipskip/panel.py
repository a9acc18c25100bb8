"""The panel: the script's accordion, built from the WebUI's own components.

What it shows is computed by plain functions (``view``, ``status_html``, ``files_html``,
``explore``) that read the host through ``hosts.current()`` only when called, so they can be
tested without a browser.  gradio is imported only when the panel is built.

Browser side (``javascript/clipskip.js``): the prompt box is watched without a server call per
keystroke; after a pause the text goes into a hidden textbox of the panel (``…_prompt``) whose
change refreshes the panel.  A hidden button (``…_refresh``) lets the script refresh it after a
model change, and the "Use N" buttons of the compatibility list set the slider.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import hosts
from lib_clipskip.hosts import HOST_LABELS
from lib_clipskip.hosts.base import webui_queue_lock
from lib_clipskip.values import (
    CLIP_G_SDXL,
    CLIP_H_SD2,
    CLIP_L_SD1,
    FAMILY_ENCODERS,
    ClipSkipRequest,
    Family,
    format_value,
    request_from_args,
)

log = logging.getLogger("sd-webui-clipskip")

AUTO_INFO = "0 = auto: the Settings default for the loaded model"
SOURCE_LABELS = {"panel": "panel", "prompt tag": "prompt tag", "settings": "Settings default", "api": "API"}
COMPAT_FAMILIES = {Family.SD1: "sd1", Family.SD2: "sd2", Family.SDXL: "sdxl", Family.SDXL_REFINER: "sdxl"}
_TAG = re.compile(r"<(\w+):([^>]+)>")  # the hosts' extra-network syntax


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

    @property
    def inputs(self) -> list[Any]:
        """The script args, in the order the API's ``alwayson_scripts`` args use."""
        return [self.enabled, self.clip_skip, self.clip_skip_g]


# --- what the panel shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderLine:
    name: str
    label: str
    value: float  # what the next generation uses on this encoder
    source: str  # "panel", "prompt tag", "settings" or "host"
    host_value: float
    depth: int


@dataclass
class View:
    """Everything the panel shows for one state of the controls, prompt and loaded model."""

    family: Family
    family_label: str
    host: str
    model_name: str | None
    active: bool  # the extension sets the value (panel enabled, or a <clipskip:…> tag)
    lines: list[EncoderLine]
    notes: list[str]  # no effect, fell back, ignored: shown with a warning sign
    g_visible: bool
    clip_skip_interactive: bool
    clip_skip_maximum: int
    compat_family: str | None
    files: list[Any] = field(default_factory=list)  # (PromptReference, FileReport | None), prompt order
    infos: list[str] = field(default_factory=list)  # plain remarks
    loading: bool = False  # no model yet, or the host is loading one: the browser asks again soon

    def value_of(self, name: str) -> float | None:
        return next((line.value for line in self.lines if line.name == name), None)

    @property
    def compat_values(self) -> tuple[float | None, float | None]:
        main = next((line.value for line in self.lines if line.name != "clip_g"), None)
        return main, self.value_of("clip_g")


class _Tag:
    def __init__(self, items: list[str]):
        self.items = items


def prompt_tags(prompt: str) -> list[_Tag]:
    """The ``<clipskip:…>`` tags of a prompt, parsed as the host parses extra networks."""
    from lib_clipskip import prompt_tag

    return [_Tag(m.group(2).split(":")) for m in _TAG.finditer(prompt or "") if m.group(1) == prompt_tag.NAME]


def model_folders(shared: Any, adapter: Any) -> tuple[list[str], list[str], list[str]]:
    """(LoRA folders the host reads, embedding folders, folders the UI may inspect) of the running WebUI."""
    import os

    cmd_opts = getattr(shared, "cmd_opts", None)
    lora = [os.fspath(d) for d in adapter.lora_folders(cmd_opts) if d]
    embeddings = [os.fspath(d) for d in [getattr(cmd_opts, "embeddings_dir", None)] if d]
    models_path = getattr(shared, "models_path", None)
    roots = ([os.fspath(models_path)] if models_path else []) + lora + embeddings
    return lora, embeddings, roots


_indexes: dict[tuple, Any] = {}


def model_index(lora_dirs: list[str], embedding_dirs: list[str], roots: list[str]) -> Any:
    """One ``compat.ModelIndex`` per set of folders (listings re-walked every few seconds)."""
    from lib_clipskip.compat import ModelIndex

    key = (tuple(lora_dirs), tuple(embedding_dirs), tuple(roots))
    index = _indexes.get(key)
    if index is None:
        index = _indexes[key] = ModelIndex(lora_dirs, embedding_dirs, allowed_roots=roots)
    return index


def view(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None, adapter: Any = None,
         sd_model: Any = None, with_files: bool = True, name_wait: float = 0.0) -> View:
    """What the panel shows; never reads the model's weights."""
    from lib_clipskip import plan, prompt_tag, settings

    adapter = adapter or hosts.current()
    shared = adapter.shared()
    if sd_model is None:
        sd_model = adapter.current_model()
    options = settings.current()
    info = adapter.inspect(sd_model).info
    parsed = request_from_args([enabled, clip_skip, clip_skip_g], defaults=options.defaults)
    notes = list(parsed.messages)
    request: ClipSkipRequest = parsed.request
    tags = prompt_tags(prompt or "")
    if tags:
        tag_request, messages = prompt_tag.request_from_tag(tags, options.defaults)
        notes += messages
        if tag_request is not None:
            request = tag_request
    if not options.enabled:
        notes.insert(0, "The extension is turned off in Settings (CLIP skip section): the host's own CLIP skip applies.")
        request = ClipSkipRequest(False, defaults=options.defaults)

    resolution = plan.resolve(request, info)
    if info.loading:  # not "no effect": the host is swapping weights; the panel asks again soon
        notes.append("The model is loading; this panel updates when it is ready.")
    else:
        notes += [m for m in resolution.messages if m not in notes]
    chosen = resolution.plan
    lines = []
    for slot in info.slots:
        spec = slot.spec
        value = chosen.value_of(spec.name) if chosen is not None else None
        if value is None:
            lines.append(EncoderLine(spec.name, spec.label, slot.host_value, "host", slot.host_value, spec.depth))
        else:
            lines.append(EncoderLine(spec.name, spec.label, value, request.source_for(spec), slot.host_value, spec.depth))
    if info.family is Family.OTHER and sd_model is not None and not request.enabled and not info.loading:
        notes.append(f"CLIP skip has no effect on {info.label}: {info.no_effect_reason or 'no CLIP layer to choose'}.")
    if info.family is Family.OTHER and sd_model is None and not any("no model" in n for n in notes):
        notes.append("No model is loaded yet; the panel updates when one is.")
    infos = []
    if chosen is not None and not chosen.changes_anything:
        host = HOST_LABELS.get(info.host, info.host)
        infos.append(f"The same as what {host} does by itself on this model: the image does not change.")

    checkpoint = getattr(sd_model, "sd_checkpoint_info", None)
    model_name = getattr(checkpoint, "name_for_extra", None) or getattr(checkpoint, "name", None)
    families_with_g = (Family.SDXL, Family.SDXL_REFINER)
    main_spec = next((s for s in FAMILY_ENCODERS.get(info.family, ()) if s.value_field == "clip_skip"), None)
    result = View(
        family=info.family,
        family_label=info.label if info.family is not Family.OTHER else (type(sd_model).__name__ if sd_model is not None else "no model"),
        host=info.host,
        model_name=model_name,
        active=chosen is not None,
        lines=lines,
        notes=notes,
        g_visible=info.family in families_with_g,
        clip_skip_interactive=not (info.family is Family.OTHER and sd_model is not None),
        clip_skip_maximum=(main_spec or CLIP_L_SD1).depth if info.family is not Family.OTHER else max(CLIP_L_SD1.depth, CLIP_H_SD2.depth),
        compat_family=COMPAT_FAMILIES.get(info.family) or (type(sd_model).__name__ if sd_model is not None else None),
        infos=infos,
        loading=info.loading or sd_model is None,
    )
    if with_files:
        result.files = compat_reports(prompt or "", result, shared, adapter, wait=name_wait)
    return result


#: how long a panel refresh waits for a folder's names (aliases, image embeddings) to be read after a
#: start or a new file; the generation path never waits (compat.ModelIndex.resolve_prompt)
PANEL_NAME_WAIT = 0.3


def compat_reports(prompt: str, shown: View, shared: Any, adapter: Any, wait: float = 0.0) -> list[Any]:
    """Reports (with warnings at the values shown) for every LoRA / embedding of the prompt."""
    from lib_clipskip.compat import check_files

    lora_dirs, embedding_dirs, roots = model_folders(shared, adapter)
    if not (lora_dirs or embedding_dirs):
        return []
    host = adapter.name
    references = model_index(lora_dirs, embedding_dirs, roots).resolve_prompt(prompt, wait=wait)
    paths = [ref.path for ref in references if ref.path]
    clip_skip, clip_skip_g = shown.compat_values
    reports = iter(check_files(paths, shown.compat_family, clip_skip, clip_skip_g, host=host, allowed_roots=roots))
    return [(ref, next(reports) if ref.path else None) for ref in references]


# --- HTML -------------------------------------------------------------------------------------

e = html.escape


def _source(line: EncoderLine) -> str:
    if line.source == "host":
        return "host's own"
    return SOURCE_LABELS.get(line.source, line.source)


def status_html(shown: View) -> str:
    parts = ['<div class="clipskip-summary" data-clipskip-loading="1">' if shown.loading else '<div class="clipskip-summary">']
    if shown.lines:
        values = " · ".join(
            f'<span class="clipskip-value" data-clipskip-encoder="{e(line.name)}">'
            f'{e(line.label)} <b>{e(format_value(line.value))}</b> '
            f'<span class="clipskip-source clipskip-source-{e(line.source.replace(" ", "-"))}">{e(_source(line))}</span></span>'
            for line in shown.lines)
        head = "Applies" if shown.active else "Off: the host's own value"
        parts.append(f'<div class="clipskip-line clipskip-applies"><span class="clipskip-key">{head}</span> {values}</div>')
    model = e(shown.family_label)
    if shown.model_name:
        model += f' <span class="clipskip-dim">({e(shown.model_name)})</span>'
    depths = ", ".join(f"{e(line.label)} {line.depth} layers" for line in shown.lines)
    host = e(HOST_LABELS.get(shown.host, shown.host))
    parts.append(f'<div class="clipskip-line clipskip-model"><span class="clipskip-key">Model</span> {model}'
                 f'{" · " + depths if depths else ""} · {host}</div>')
    for note in shown.notes:
        parts.append(f'<div class="clipskip-line clipskip-note">{e(note)}</div>')
    for remark in shown.infos:
        parts.append(f'<div class="clipskip-line clipskip-info">{e(remark)}</div>')
    parts.append("</div>")
    return "".join(parts)


def files_html(shown: View, slider_id: str = "", accordion_id: str = "") -> str:
    if not shown.files:
        return ('<div class="clipskip-files clipskip-files-empty">No LoRA or embedding in this prompt '
                "(<code>&lt;lora:…&gt;</code> tags and embedding names are listed here).</div>")
    rows = []
    main_value, _ = shown.compat_values
    for ref, report in shown.files:
        name = e(ref.name)
        if getattr(ref, "note", None):  # e.g. other files with the same name, which the host does not use
            name += f'<div class="clipskip-dim clipskip-ref-note">{e(ref.note)}</div>'
        if report is None:
            rows.append(f'<tr class="clipskip-row clipskip-row-missing"><td class="clipskip-name">{name}</td>'
                        f'<td>{e(ref.kind)}</td><td colspan="2">–</td>'
                        f'<td><span class="clipskip-warning">{e(ref.problem or "not found")}</span></td></tr>')
            continue
        kind = e(report.format_label or report.kind)
        if report.error:
            kind = e(ref.kind)
        family = e(report.family_label if not report.error else "–")
        skip = "–"
        if report.trained_clip_skip is not None:
            detail = report.trained_clip_skip_detail or report.trained_clip_skip_source or ""
            skip = f'{e(format_value(report.trained_clip_skip))} <span class="clipskip-dim">{e(detail)}</span>'
        warnings = "".join(
            f'<li class="clipskip-warning" data-clipskip-code="{e(w.code)}"><code>{e(w.code)}</code> {e(w.message)}</li>'
            for w in report.warnings)
        action = ""
        trained = report.trained_clip_skip
        if (trained is not None and slider_id and shown.family in (Family.SD1, Family.SD2)
                and report.family in (shown.compat_family, "unknown") and trained != main_value):
            action = (f'<button type="button" class="clipskip-apply" data-clipskip-slider="{e(slider_id)}" '
                      f'data-clipskip-accordion="{e(accordion_id)}" data-clipskip-value="{e(format_value(trained))}" '
                      f'title="Set the CLIP skip slider to the value this file was trained with">'
                      f'Use {e(format_value(trained))}</button>')
        state = "clipskip-row-unreadable" if report.error else "clipskip-row-warning" if report.warnings else "clipskip-row-ok"
        rows.append(
            f'<tr class="clipskip-row {state}" title="{e(report.path)}"><td class="clipskip-name">{name}</td>'
            f"<td>{kind}</td><td>{family}</td><td>{skip}</td>"
            f'<td>{"<ul class=clipskip-warnings>" + warnings + "</ul>" if warnings else "<span class=clipskip-ok>ok</span>"}'
            f"{action}</td></tr>")
    return ('<div class="clipskip-files"><table class="clipskip-table"><thead><tr><th>file</th><th>kind</th>'
            "<th>family</th><th>trained skip</th><th>at this value</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


# --- layer explorer ---------------------------------------------------------------------------

_explore_lock = threading.Lock()


_MESSAGE_CLASSES = {"info": "clipskip-info", "warning": "clipskip-warning", "error": "clipskip-error"}


def _message(text: str, kind: str = "info") -> str:
    return f'<div class="clipskip-explorer-message {_MESSAGE_CLASSES[kind]}">{e(text)}</div>'


def explore(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None, adapter: Any = None) -> str:
    """One text-encoder pass on the loaded model for ``prompt``; the plot as HTML. Never raises."""
    from lib_clipskip import explorer
    from lib_clipskip.compat.prompt import strip_extra_networks

    adapter = adapter or hosts.current()
    shared = adapter.shared()
    state = getattr(shared, "state", None)
    if getattr(state, "job_count", 0) not in (0, None):
        return _message("A generation is running; the layer explorer runs when it has finished.", "warning")
    sd_model = adapter.current_model()
    if sd_model is None:
        return _message("No model is loaded: load a checkpoint, then try again.", "warning")
    host_lock = webui_queue_lock()
    if not _explore_lock.acquire(blocking=False):
        return _message("The layer explorer is already running.", "warning")
    try:
        if host_lock is not None and not host_lock.acquire(blocking=False):
            return _message("A generation is running; the layer explorer runs when it has finished.", "warning")
        try:
            shown = view(enabled, clip_skip, clip_skip_g, prompt, adapter=adapter, sd_model=sd_model, with_files=False)
            if shown.family is Family.OTHER:
                return _message(next((n for n in shown.notes if "no effect" in n),
                                     f"CLIP skip has no effect on {shown.family_label}: nothing to explore."), "warning")
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
        return _message(f"The layer explorer failed: {type(error).__name__}: {error}", "error")
    finally:
        _explore_lock.release()
    if not curves:
        return _message("This model's text encoder cannot be inspected layer by layer on this host.", "warning")
    shown_prompt = text if len(text) <= 80 else text[:77] + "…"
    summaries = "".join(f"<li>{e(explorer.summary(c))}</li>" for c in curves)
    return (f'<div class="clipskip-explorer-result"><div class="clipskip-dim">“{e(shown_prompt) or "(empty prompt)"}” · '
            f"one pass of {e(shown.family_label)}'s text encoder{e(_networks_text(networks))}, in {took * 1000:.0f} ms. "
            "Higher = this value conditions the image much like the last layer.</div>"
            f"{explorer.svg(curves)}<ul class=\"clipskip-explorer-notes\">{summaries}</ul></div>")


def _networks_text(networks: list[str] | None) -> str:
    if networks is None:
        return " as the host has it loaded now (with any LoRAs the last generation left applied)"
    if not networks:
        return ", without LoRAs"
    shown = ", ".join(networks[:5]) + ("…" if len(networks) > 5 else "")
    return f", with the LoRAs the last generation left applied ({shown})"


# --- gradio -----------------------------------------------------------------------------------


def refresh_outputs(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None,
                    slider_id: str = "", accordion_id: str = "") -> tuple[str, str, dict, dict]:
    """(status HTML, files HTML, clip_skip update, clip_skip_g update) for one refresh. Never raises."""
    import gradio as gr

    try:
        shown = view(enabled, clip_skip, clip_skip_g, prompt, name_wait=PANEL_NAME_WAIT)
        return (status_html(shown), files_html(shown, slider_id, accordion_id),
                gr.update(interactive=shown.clip_skip_interactive, maximum=shown.clip_skip_maximum),
                gr.update(visible=shown.g_visible))
    except Exception as error:
        log.exception("CLIP skip: could not update the panel")
        return (_message(f"The panel could not update: {type(error).__name__}: {error}", "error"), "",
                gr.update(), gr.update())


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
        files = gr.HTML(value="", elem_id=elem_id("files"), elem_classes=["clipskip-files-box"])
        with gr.Accordion("Layer explorer", open=False, elem_id=elem_id("explorer"), elem_classes=["clipskip-explorer"]):
            explore_button = gr.Button("How does each layer see this prompt?", elem_id=elem_id("explore"),
                                       elem_classes=["clipskip-explore", tab_class])
            plot = gr.HTML(value="", elem_id=elem_id("plot"), elem_classes=["clipskip-plot-box"])
        prompt = gr.Textbox(value="", show_label=False, lines=1, elem_id=elem_id("prompt"),
                            elem_classes=["clipskip-hidden", "clipskip-prompt-sink", tab_class])
        refresh = gr.Button("CLIP skip refresh", elem_id=elem_id("refresh"),
                            elem_classes=["clipskip-hidden", "clipskip-refresh", tab_class])

    slider_id, accordion_id = elem_id("clip_skip"), elem_id("enabled")

    latest = RefreshTickets()

    def on_refresh(enabled_value, clip_skip_value, clip_skip_g_value, prompt_value, request):
        ticket = latest.take(request)
        result = refresh_outputs(enabled_value, clip_skip_value, clip_skip_g_value, prompt_value, slider_id, accordion_id)
        if not latest.is_newest(request, ticket):  # a later refresh of this page is under way or done: keep its answer
            return [gr.update() for _ in result]
        return result

    on_refresh.__annotations__["request"] = gr.Request  # gradio injects it by this (real, not postponed) annotation

    inputs = [enabled, clip_skip, clip_skip_g, prompt]
    outputs = [status, files, clip_skip, clip_skip_g]
    if int(gr.__version__.split(".")[0]) >= 4:  # one refresh at a time, in order: a stale answer never lands last
        ordering = {"queue": True, "concurrency_id": f"clipskip_panel_{tab}", "concurrency_limit": 1}
    else:  # gradio 3: straight to the server, never behind a generation in the queue
        ordering = {"queue": False}
    for trigger in (enabled.change, clip_skip.change, clip_skip_g.change, prompt.change, refresh.click):
        trigger(fn=on_refresh, inputs=inputs, outputs=outputs, show_progress="hidden", **ordering)
    explore_button.click(fn=explore_ui, inputs=inputs, outputs=[plot], show_progress="minimal")
    return Panel(enabled, clip_skip, clip_skip_g, status, files=files, prompt=prompt, refresh=refresh,
                 explore=explore_button, plot=plot)


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


def explore_ui(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None) -> str:
    return explore(enabled, clip_skip, clip_skip_g, prompt)
