"""What the WebUI script does at each hook, kept out of ``scripts/`` so it can be tested without a WebUI."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lib_clipskip import checkpoint_memory, console, generation, grid, infotext, prompt_tag, settings
from lib_clipskip.hosts import current
from lib_clipskip.hosts.base import HOST_OPTION_RANGE, usable_host_option
from lib_clipskip.request import cell_of
from lib_clipskip.values import ClipSkipRequest, request_from_args

log = logging.getLogger("sd-webui-clipskip")

TITLE = "CLIP skip"


#: the running host's adapter (``hosts.current``, cached; tests clear it between hosts)
adapter = current


def request_for(p: Any, script_args: Sequence[Any], defaults=None, remember: bool | None = None) -> ClipSkipRequest:
    """This generation's request: the panel / API args (parsed once, here) — at "auto", or when
    they are the values remembered for the generation's checkpoint, those — under an X/Y/Z cell."""
    options = settings.current() if defaults is None or remember is None else None
    defaults = defaults if defaults is not None else options.defaults
    parsed = request_from_args(list(script_args), defaults=defaults)
    for message in parsed.messages:
        log.warning("CLIP skip: %s", message)
    request = parsed.request
    if (remember if remember is not None else options.remember_per_checkpoint) and request.enabled:
        memory, problem = checkpoint_memory.load(adapter().checkpoint_file(p))
        if problem:
            log.warning("CLIP skip: %s", problem)
        request = checkpoint_memory.resolve(request, list(script_args), memory, defaults)
    cell = cell_of(p)
    return cell.request(request) if cell is not None else request


def before_process(p: Any, script_args: Sequence[Any]) -> None:
    try:
        options = settings.current()
        if not options.enabled:  # Settings master toggle off: nothing of ours on the generation path
            generation.detach(p)
            return
        guard_host_option(p)
        request = generation.external_request(p)  # another extension set it (lib_clipskip.external)
        if request is None:
            if generation.chosen_by_spawner(p):  # e.g. ADetailer's own CLIP skip for its pass: it wins there
                generation.detach(p)
                return
            request = request_for(p, script_args, options.defaults, options.remember_per_checkpoint)
        state = generation.attach(p, request, adapter())
        grid.begin_cell(p, state)
        _remember(p, request, options)
        if state is not None and options.console_warnings:
            console.warn_about_files(p, state, options)
    except Exception:  # never cost the user the image: the host just runs without us
        log.exception("CLIP skip: could not set up this generation; the host's own CLIP skip is used")
        generation.detach(p)


HOST_OPTION = "CLIP_stop_at_last_layers"


def guard_host_option(p: Any) -> None:
    """A ``Clip skip`` override the host cannot use (the API's ``infotext`` field passes a pasted
    ``Clip skip: 99`` straight through; ``hidden_states[-99]`` then fails the generation): cast
    ``2.0`` to ``2``, drop anything else with one message.  ``before_process`` runs before the host
    applies ``override_settings`` (A1111 ``processing.py:819``, Forge ``:815``)."""
    overrides = getattr(p, "override_settings", None)
    if not isinstance(overrides, dict) or HOST_OPTION not in overrides:
        return
    raw = overrides[HOST_OPTION]
    value = usable_host_option(raw)
    if value is None:
        overrides.pop(HOST_OPTION)
        log.warning("CLIP skip: the Clip skip override %s is not a value the WebUI can use (a whole number "
                    "%d-%d); the saved Clip skip is used.", str(raw)[:40], *HOST_OPTION_RANGE)
    elif value != raw or type(raw) is not int:
        overrides[HOST_OPTION] = value


def _remember(p: Any, request: ClipSkipRequest, options: settings.Settings) -> None:
    """Keep the panel's request for ``<clipskip:…>``-free batches; make the infotext describe ours."""
    vars(p)[prompt_tag.PANEL_ATTRIBUTE] = request
    state = generation.state_of(p)
    if state is not None:
        state.quiet = not options.console_warnings
        infotext.install(p)


def finish(p: Any) -> generation.GenerationState | None:
    state = generation.detach(p)
    if state is not None and state.owner != id(p):
        return None  # a copy of p (ADetailer calls postprocess on one): the generation is not over
    grid.finish_cell(p, state)  # inside an X/Y/Z grid: compare this cell's conditioning with the others
    return state
