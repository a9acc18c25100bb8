"""``<clipskip:…>`` in a prompt: an extra-network tag that sets that prompt's value.

Forms: ``<clipskip:N>`` (every encoder), ``<clipskip:N:G>`` (SDXL CLIP-L N, OpenCLIP-G G) and
the named ``<clipskip:l=N>``, ``<clipskip:g=G>``, ``<clipskip:l=N:g=G>``; ``auto`` or ``0`` means the
Settings default.  Because it is an extra network, the host strips it from the text, puts it in
the cond-cache key (``extra_network_data``) and calls ``activate`` once per batch (and again for
the hires prompt) with the tags of the batch's first prompt; it works in styles, prompts from
file and the API like ``<lora:…>``.

Precedence (DESIGN §2, ``lib_clipskip.request``): an X/Y/Z cell (ours or the host's Clip skip
axis) beats the tag, the tag beats the panel.  With no tag,
``activate`` restores the panel's request, so a batch without a tag does what the panel says.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from lib_clipskip import generation, schedule
from lib_clipskip.values import ClipSkipRequest, ClipSkipValueError

log = logging.getLogger("sd-webui-clipskip")

NAME = "clipskip"
SOURCE = "prompt tag"
#: Set on ``p`` by ``before_process``: the panel's (or XYZ cell's) request, restored when no tag.
PANEL_ATTRIBUTE = generation.BASE_ATTRIBUTE

def describe(params: Any) -> str:
    items = getattr(params, "items", params)
    return f"<{NAME}:{':'.join(map(str, items or []))}>"[:80]


def request_from_tag(params_list: list[Any], defaults) -> tuple[ClipSkipRequest | None, list[str]]:
    """The request of the last usable tag (and messages for the others); None when none is usable."""
    messages: list[str] = []
    if len(params_list) > 1:
        messages.append(f"{len(params_list)} <clipskip:…> tags in one prompt; the last one is used.")
    for params in reversed(params_list):
        items = list(getattr(params, "items", None) or [])
        try:
            main, g_value = schedule.parse_items(items)
        except ClipSkipValueError as error:
            messages.append(f"Ignored the tag {describe(params)}: {error}")
            continue
        (first, steps), (first_g, steps_g) = schedule.split(main), schedule.split(g_value)
        return ClipSkipRequest(True, first, first_g, SOURCE, defaults, schedule=steps, schedule_g=steps_g), messages
    return None, messages


class _Params:
    """The items of one ``<clipskip:…>`` as ``extra_networks.ExtraNetworkParams`` holds them."""

    def __init__(self, items: list[str]):
        self.items = items


#: the hosts' extra-network syntax (``modules/extra_networks.py`` ``re_extra_net``)
_TAG = re.compile(r"<(\w+):([^>]+)>")


def request_in_prompt(prompt: str, defaults) -> tuple[ClipSkipRequest | None, list[str]]:
    """The request of the ``<clipskip:…>`` tags in a prompt's text, outside a generation (panel, console)."""
    tags = [_Params(m.group(2).split(":")) for m in _TAG.finditer(prompt or "") if m.group(1) == NAME]
    return request_from_tag(tags, defaults) if tags else (None, [])


def activate(p: Any, params_list: list[Any]) -> None:
    """``ExtraNetwork.activate``: set this batch's request from its tag, or restore the panel's."""
    from lib_clipskip import infotext, settings
    from lib_clipskip.request import decided_by_cell

    options = settings.current()
    if not options.enabled:
        return  # master toggle off: no tag handling at all (the host still strips the tag)
    panel = vars(p).get(PANEL_ATTRIBUTE)
    if generation.chosen_by_spawner(p):  # the extension that made this p chose: no tag, no reset
        if params_list:
            _tell(p, "The extension that started this pass set its own Clip skip; the <clipskip:…> tag is ignored "
                     "for it.", options)
        return
    if decided_by_cell(p):
        if params_list:
            _tell(p, "An X/Y/Z plot cell sets CLIP skip; the <clipskip:…> tag is ignored for this cell.", options)
        return
    request, messages = request_from_tag(list(params_list or []), options.defaults)
    for message in messages:
        _tell(p, message, options)
    if request is None:
        if panel is not None or generation.state_of(p) is not None:
            generation.set_request(p, panel if panel is not None else ClipSkipRequest())
        return
    if panel is not None:  # the tag is the prompt's: the negative prompt keeps the panel's own value
        request = replace(request, negative=panel.negative, negative_schedule=panel.negative_schedule)
    generation.set_request(p, request)
    state = generation.state_of(p)
    if state is not None:
        state.quiet = not options.console_warnings
    infotext.install(p)


def _tell(p: Any, message: str, options: Any) -> None:
    state = generation.state_of(p)
    if state is not None:
        state.note(message)
    elif options.console_warnings:
        log.warning("CLIP skip: %s", message)


def network(base_class: type) -> Any:
    """An instance of a subclass of the host's ``extra_networks.ExtraNetwork`` named "clipskip"."""

    class ClipSkipNetwork(base_class):
        def __init__(self):
            super().__init__(NAME)

        def activate(self, p, params_list):
            try:
                activate(p, params_list)
            except Exception:  # never cost the user the image
                log.exception("CLIP skip: could not apply the <clipskip:…> tag")

        def deactivate(self, p):
            pass

    return ClipSkipNetwork()


def register() -> None:
    """Register the tag (``script_callbacks.on_before_ui``: ``extra_networks.initialize()`` clears
    the registry after scripts load)."""
    from lib_clipskip.hosts.base import webui_extra_networks

    extra_networks = webui_extra_networks()
    extra_networks.register_extra_network(network(extra_networks.ExtraNetwork))
