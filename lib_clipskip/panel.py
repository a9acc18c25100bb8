"""What the panel shows, as plain functions of the controls, the prompt and the loaded model:
``view`` (values and their source, the family, no-effect notes, the prompt's LoRAs and embeddings)
and its HTML (``status_html``, ``files_html``).  They read the host through ``hosts.current()``
only when called, never the model's weights, so they are tested without a browser.  The gradio
side is ``lib_clipskip.panel_ui``.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

from lib_clipskip import hosts, prompt_files
from lib_clipskip.hosts import HOST_LABELS
from lib_clipskip.values import (
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
SOURCE_LABELS = {"panel": "panel", "prompt tag": "prompt tag", "settings": "Settings default", "api": "API",
                 "checkpoint": "checkpoint"}


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
    #: the same for the negative prompt, at the negative prompt's values
    negative_files: list[Any] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)  # plain remarks
    loading: bool = False  # no model yet, or the host is loading one: the browser asks again soon
    checkpoint_file: str | None = None  # the selected checkpoint (``checkpoint_memory``)
    memory: Any = None  # ``checkpoint_memory.Memory`` remembered for it
    memory_used: bool = True  # Settings: load / use the remembered values
    suggestion: tuple[float, str] | None = None  # what the checkpoint's creator recorded, and where
    #: turn the panel on / off once (values loaded from, or given back after, a checkpoint): done by
    #: javascript/clipskip.js, since an update of the InputAccordion would rebuild it outside its Blocks
    panel_switch: bool | None = None

    def value_of(self, name: str) -> float | None:
        return next((line.value for line in self.lines if line.name == name), None)

    @property
    def compat_values(self) -> tuple[float | None, float | None]:
        main = next((line.value for line in self.lines if line.name != "clip_g"), None)
        return main, self.value_of("clip_g")


#: between the prompt and the negative prompt in the text ``javascript/clipskip.js`` sends
NEGATIVE_MARK = "\n\u2063negative prompt\u2063\n"


def view(enabled: Any, clip_skip: Any, clip_skip_g: Any, prompt: str | None, adapter: Any = None,
         sd_model: Any = None, with_files: bool = True, name_wait: float = 0.0,
         schedule: Any = "", negative: Any = "") -> View:
    """What the panel shows; never reads the model's weights.

    ``prompt``: the prompt, optionally followed by ``NEGATIVE_MARK`` and the negative prompt;
    ``schedule`` / ``negative``: the panel's "over the steps" and negative-prompt texts (empty: none)."""
    from lib_clipskip import checkpoint_memory, plan, prompt_tag, settings

    adapter = adapter or hosts.current()
    shared = adapter.shared()
    if sd_model is None:
        sd_model = adapter.current_model()
    options = settings.current()
    info = adapter.inspect(sd_model).info
    prompt, _mark, negative_prompt = (prompt or "").partition(NEGATIVE_MARK)
    parsed = request_from_args([enabled, clip_skip, clip_skip_g, schedule or "", negative or ""], defaults=options.defaults)
    notes = list(parsed.messages)
    request: ClipSkipRequest = parsed.request
    checkpoint_file = adapter.checkpoint_file() if sd_model is not None else None
    memory, problem = checkpoint_memory.load(checkpoint_file)
    if problem:
        notes.append(problem)
    if options.remember_per_checkpoint:
        request = checkpoint_memory.resolve(request, [enabled, clip_skip, clip_skip_g, schedule, negative], memory,
                                            options.defaults)
    tag_request, messages = prompt_tag.request_in_prompt(prompt or "", options.defaults)
    notes += messages
    if tag_request is not None:  # the prompt's; the negative prompt keeps the panel's own value
        request = replace(tag_request, negative=request.negative, negative_schedule=request.negative_schedule)
    if not options.enabled:
        notes.insert(0, "The extension is turned off in Settings (CLIP skip section): the host's own CLIP skip applies.")
        request = ClipSkipRequest(False, defaults=options.defaults)

    resolution = plan.resolve(request, info)
    if info.loading:  # not "no effect": the host is swapping weights; the panel asks again soon
        why = info.no_effect_reason if info.no_effect_reason not in (None, "the model is loading") else None
        notes.append(f"The model is loading{f' ({why})' if why else ''}; this panel updates when it is ready.")
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
    if info.family is Family.OTHER and sd_model is None and not info.loading and not any("no model" in n for n in notes):
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
        compat_family=prompt_files.COMPAT_FAMILIES.get(info.family) or (type(sd_model).__name__ if sd_model is not None else None),
        infos=infos,
        loading=info.loading or sd_model is None,
        checkpoint_file=checkpoint_file,
        memory=memory,
        memory_used=options.remember_per_checkpoint,
        suggestion=checkpoint_memory.creator_value(checkpoint_file, info.family),
    )
    if with_files:
        clip_skip_value, clip_skip_g_value = result.compat_values
        result.files = prompt_files.reports(prompt or "", result.compat_family, clip_skip_value, clip_skip_g_value,
                                            shared, adapter, wait=name_wait)
        if negative_prompt.strip():
            negative_plan = plan.resolve(request.for_negative(), info).plan if request.enabled else None
            values = {s.spec.name: (negative_plan.value_of(s.spec.name) if negative_plan is not None else None)
                      or s.host_value for s in info.slots}
            main = next((v for name, v in values.items() if name != "clip_g"), None)
            result.negative_files = prompt_files.reports(negative_prompt, result.compat_family, main, values.get("clip_g"),
                                                         shared, adapter, wait=name_wait)
    return result


# --- HTML -------------------------------------------------------------------------------------

e = html.escape


def _source(line: EncoderLine) -> str:
    if line.source == "host":
        return "host's own"
    return SOURCE_LABELS.get(line.source, line.source)


def _checkpoint_lines(shown: View, slider_id: str, accordion_id: str) -> list[str]:
    """The remembered values of the selected checkpoint, and what its creator recorded ("Use N")."""
    import os

    lines = []
    if shown.memory is not None and not shown.memory.empty:
        where = os.path.basename(os.path.splitext(shown.checkpoint_file or "")[0] + ".json")
        off = "" if shown.memory_used else " (not used: turned off in Settings)"
        lines.append(f'<div class="clipskip-line clipskip-checkpoint"><span class="clipskip-key">Checkpoint</span> '
                     f'remembered {e(shown.memory.describe())} <span class="clipskip-dim">in {e(where)}</span>{e(off)}</div>')
    if shown.suggestion is not None:
        value, detail = shown.suggestion
        main_value, _ = shown.compat_values
        button = ""
        if slider_id and value != main_value:
            button = (f' <button type="button" class="clipskip-apply clipskip-use-creator" data-clipskip-slider="{e(slider_id)}" '
                      f'data-clipskip-accordion="{e(accordion_id)}" data-clipskip-value="{e(format_value(value))}" '
                      f'title="Set the CLIP skip slider to the value the checkpoint\'s creator recorded">Use</button>')
        lines.append(f'<div class="clipskip-line clipskip-creator">The creator recorded Clip skip <b>{e(format_value(value))}</b> '
                     f'<span class="clipskip-dim">({e(detail)})</span>{button}</div>')
    return lines


def status_html(shown: View, slider_id: str = "", accordion_id: str = "") -> str:
    switch = ""
    if shown.panel_switch is not None and accordion_id:
        switch = f' data-clipskip-panel="{"on" if shown.panel_switch else "off"}" data-clipskip-accordion="{e(accordion_id)}"'
    parts = [f'<div class="clipskip-summary"{switch} data-clipskip-loading="1">' if shown.loading
             else f'<div class="clipskip-summary"{switch}>']
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
    parts += _checkpoint_lines(shown, slider_id, accordion_id)
    for note in shown.notes:
        parts.append(f'<div class="clipskip-line clipskip-note">{e(note)}</div>')
    for remark in shown.infos:
        parts.append(f'<div class="clipskip-line clipskip-info">{e(remark)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _breakable(name: str) -> str:
    """``name`` escaped, with a line-break opportunity after each ``_``, ``-`` and ``.``."""
    return re.sub(r"([_.-])", r"\1<wbr>", e(name))


def files_html(shown: View, slider_id: str = "", accordion_id: str = "") -> str:
    if not shown.files and not shown.negative_files:
        return ('<div class="clipskip-files clipskip-files-empty">No LoRA or embedding in this prompt '
                "(<code>&lt;lora:…&gt;</code> tags and embedding names are listed here).</div>")
    rows = []
    main_value, _ = shown.compat_values
    negative_rows = [(ref, report, True) for ref, report in shown.negative_files]
    for ref, report, in_negative in [(ref, report, False) for ref, report in shown.files] + negative_rows:
        name = _breakable(ref.name)
        if in_negative:
            name += ' <span class="clipskip-dim clipskip-in-negative">negative prompt</span>'
            if ref.kind == "lora":  # the hosts parse extra networks of the prompt only (processing.py)
                rows.append(f'<tr class="clipskip-row clipskip-row-missing"><td class="clipskip-name">{name}</td>'
                            f'<td>{e(ref.kind)}</td><td colspan="2">–</td><td><span class="clipskip-warning">'
                            "not applied: the WebUI applies LoRA tags of the prompt only; here it stays text"
                            "</span></td></tr>")
                continue
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
        if (trained is not None and slider_id and not in_negative and shown.family in (Family.SD1, Family.SD2)
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


