"""Console warnings at generation: the prompt's LoRAs and embeddings at the values it uses.

Each message is logged once a minute at most (X/Y/Z cells and repeated generations say each
once).  The files are read through ``prompt_files`` (never waiting for folders to be listed:
a generation does not wait on files it doesn't use).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from lib_clipskip import generation, plan, prompt_files, prompt_tag, settings
from lib_clipskip.request import decided_by_cell

log = logging.getLogger("sd-webui-clipskip")

#: (message, time) of recent console warnings
_recent: collections.OrderedDict[str, float] = collections.OrderedDict()
REPEAT_SECONDS = 60.0


def _first(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else ((prompt or [""])[0] or "")


def warning_lines(p: Any, state: generation.GenerationState, options: settings.Settings) -> list[str]:
    """One line per warning of the first prompt's and negative prompt's files at the values each uses."""
    prompt = _first(p.prompt)
    request = state.request
    if not decided_by_cell(p):  # the prompt's own tag decides its batch (an X/Y/Z cell beats it)
        tag_request, _messages = prompt_tag.request_in_prompt(prompt, options.defaults)
        request = tag_request or request
    adapter = state.adapter
    model = adapter.current_model()
    info = adapter.inspect(model).info
    family = prompt_files.COMPAT_FAMILIES.get(info.family) or (type(model).__name__ if model is not None else None)
    lines = _file_lines(prompt, request, info, family, adapter, "")
    negative = _first(getattr(p, "negative_prompt", ""))
    if negative.strip():  # negative embeddings are among the most used files; their own value when it has one
        lines += _file_lines(negative, request.for_negative(), info, family, adapter, "negative prompt: ")
    return lines


def _file_lines(prompt: str, request: Any, info: Any, family: Any, adapter: Any, where: str) -> list[str]:
    chosen = plan.resolve(request, info).plan
    values = {slot.spec.name: (chosen.value_of(slot.spec.name) if chosen is not None else None) or slot.host_value
              for slot in info.slots}
    main = next((v for name, v in values.items() if name != "clip_g"), None)
    lines = []
    for reference, report in prompt_files.reports(prompt, family, main, values.get("clip_g"), adapter.shared(), adapter):
        if where and reference.kind == "lora":  # the hosts parse extra networks of the prompt only
            lines.append(f"{where}{reference.name}: a LoRA tag in the negative prompt is not applied by the WebUI "
                         "(it stays text there).")
        elif report is None:
            lines.append(f"{where}{reference.name}: {reference.problem}")
        else:
            lines += [f"{where}{reference.name} [{warning.code}]: {warning.message}" for warning in report.warnings]
    return lines


def warn_about_files(p: Any, state: generation.GenerationState, options: settings.Settings) -> list[str]:
    """Log the compatibility warnings not said in the last minute; returns them. Never raises."""
    try:
        lines = warning_lines(p, state, options)
    except Exception:
        log.exception("CLIP skip: could not check the prompt's LoRAs and embeddings")
        return []
    now = time.monotonic()
    fresh = [line for line in lines if now - _recent.get(line, -REPEAT_SECONDS) >= REPEAT_SECONDS]
    for line in fresh:
        _recent[line] = now
        _recent.move_to_end(line)
        log.warning("CLIP skip: %s", line)
    while len(_recent) > 256:
        _recent.popitem(last=False)
    return fresh
