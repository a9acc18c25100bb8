"""A small public API for other extensions (the way ControlNet offers ``external_code``).

Once the WebUI has loaded this extension, any other extension can use it without knowing where it
is installed::

    import importlib
    try:
        clipskip = importlib.import_module("lib_clipskip.external")
    except ImportError:
        clipskip = None  # the CLIP skip extension is not installed

    clipskip.request_of(p)                 # {"clip_skip": 2.0, "clip_skip_g": None, ...} or None
    clipskip.set_request(p, 2, clip_skip_g=3)  # before p's conditionings are computed
    clipskip.layers_used(p)                # after: which hidden state each encoder used, per batch

Values are in this extension's numbering (README "What a value means": N = the N-th layer from the
end of the original encoder).  A processing started inside a generation (the way ADetailer runs
its pass) already inherits that generation's value; ``set_request`` on it is an explicit choice
that beats the inherited value and any ``<clipskip:…>`` tag in its prompt.
"""

from __future__ import annotations

from typing import Any

from lib_clipskip import generation, infotext, settings
from lib_clipskip.values import ClipSkipRequest, ClipSkipValueError, parse_value

#: bumped when a function's meaning changes
API_VERSION = 1
SOURCE = "external"


def request_of(p: Any) -> dict[str, Any] | None:
    """The request in force for ``p`` (its own, or the one it inherits from the generation it runs
    in), or None when the WebUI's own CLIP skip applies.

    ``clip_skip`` / ``clip_skip_g``: floats, None = the Settings default for the loaded model;
    ``source``: "panel", "prompt tag", "xyz", "external" …; ``follow_host``: True when every encoder
    takes what the WebUI does at its own option (an X/Y/Z cell of the WebUI's Clip skip axis).
    """
    state = generation.state_of(p)
    request = state.request if state is not None else generation.inherited_request(p)
    if request is None or not request.enabled:
        return None
    return {"clip_skip": request.clip_skip, "clip_skip_g": request.clip_skip_g, "source": request.source,
            "follow_host": request.follow_host, "inherited": state.inherited if state is not None else True}


def set_request(p: Any, clip_skip: float | None, clip_skip_g: float | None = None) -> None:
    """Make ``p``'s conditionings that are not computed yet use these values.

    ``None`` = auto (the Settings default; for ``clip_skip_g``: follow ``clip_skip``).  Raises
    ``ValueError`` (a ``ClipSkipValueError`` with a one-sentence message) for a value that is not
    a number from 1 to 64; a value beyond the loaded encoder's depth is reported at generation and
    the WebUI's own value is used for that encoder.  Does nothing when the extension is turned off
    in Settings.
    """
    values = [None if v is None else parse_value(v, what=what)
              for v, what in ((clip_skip, "CLIP skip"), (clip_skip_g, "OpenCLIP-G CLIP skip"))]
    options = settings.current()
    if not options.enabled:
        return
    request = ClipSkipRequest(True, values[0], values[1], SOURCE, options.defaults)
    vars(p)[generation.EXTERNAL_ATTRIBUTE] = request
    vars(p)[generation.BASE_ATTRIBUTE] = request
    generation.set_request(p, request)
    infotext.install(p)


def clear_request(p: Any) -> None:
    """Undo ``set_request``: ``p`` follows the panel / its inherited value again (from its next generation)."""
    vars(p).pop(generation.EXTERNAL_ATTRIBUTE, None)
    vars(p).pop(generation.BASE_ATTRIBUTE, None)


def layers_used(p: Any) -> list[dict[str, Any]]:
    """What each encoder used, per batch, in the order the conditionings were computed.

    One dict per encoder and batch: ``batch`` (``p.iteration``), ``encoder`` ("clip_l", "clip_h",
    "clip_g"), ``value`` (our numbering), ``hidden_state`` (index into the encoder's hidden states,
    0 = the embeddings; for a fractional value the upper of the two blended), ``blend``
    (``(lower index, weight)`` or None), ``depth`` (the encoder's original layers) and ``by``
    ("extension" or "host": the WebUI's own value, where ours could not apply).  Read it during the
    generation (up to the scripts' ``postprocess``, e.g. in ``postprocess_image``); empty when the
    extension did nothing for ``p``, before its first conditioning and after the generation.
    """
    state = generation.state_of(p)
    if state is None:
        return []
    rows = []
    for batch, plans in sorted(state.batches.items()):
        for plan in plans:
            for encoder in plan.encoders:
                pick = encoder.pick
                rows.append({"batch": batch, "encoder": encoder.name, "value": encoder.value,
                             "hidden_state": pick.upper, "blend": (pick.lower, pick.weight) if pick.weight else None,
                             "depth": _depth(encoder.name, plan), "by": "extension"})
            for name, value in plan.kept:
                rows.append({"batch": batch, "encoder": name, "value": value, "hidden_state": None, "blend": None,
                             "depth": _depth(name, plan), "by": "host"})
    return rows


def _depth(name: str, plan: Any) -> int:
    from lib_clipskip.values import FAMILY_ENCODERS

    return next((spec.depth for spec in FAMILY_ENCODERS[plan.family] if spec.name == name), 0)


__all__ = ["API_VERSION", "ClipSkipValueError", "clear_request", "layers_used", "request_of", "set_request"]
