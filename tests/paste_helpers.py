"""Paste an infotext into a stand-in tab the way the ↙ button / PNG Info "Send to" does."""

from __future__ import annotations

from typing import Any

NAMES = ("enabled", "clip_skip", "clip_skip_g", "schedule", "negative", "status")


def paste_updates(ui, text: str, tab: str = "txt2img") -> dict[str, Any]:
    """The gr.update each of our panel's controls gets (``{}`` = left as it is)."""
    from modules import infotext_utils

    script = ui.script(tab)
    controls = dict(zip(NAMES, (script.panel.enabled, script.panel.clip_skip, script.panel.clip_skip_g,
                                script.panel.schedule, script.panel.negative, script.panel.status)))
    func, outputs = infotext_utils.paste_function(ui.runners[tab].infotext_fields)
    updates = func(text)
    by_component = {id(c): u for c, u in zip(outputs, updates)}
    return {name: {k: v for k, v in by_component[id(c)].items() if k != "__type__"} for name, c in controls.items()}


def paste_values(ui, text: str, tab: str = "txt2img", current: dict | None = None) -> dict[str, Any]:
    """Our panel's values after pasting, starting from ``current`` (default: the UI defaults)."""
    values = dict(current or {"enabled": False, "clip_skip": 0, "clip_skip_g": 0, "schedule": "", "negative": "",
                              "status": ""})
    for name, update in paste_updates(ui, text, tab).items():
        if "value" in update:
            values[name] = update["value"]
    return values
