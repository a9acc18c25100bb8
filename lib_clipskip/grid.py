"""What an X/Y/Z grid learns while it runs: one ``GridSession`` on the grid's ``p``.

The session (copied by reference into every cell, which are shallow copies of the grid's ``p``)
holds the grid's encoder passes (``layercache``: one full pass per prompt) and a record of every
cell's conditioning, so cells that got identical conditioning from different CLIP-skip settings
are reported in the console and the grid's infotext and comments, with the layers they resolved to.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.hosts import loaded_model_info
from lib_clipskip.layercache import HiddenStateCache, tensor_digest
from lib_clipskip.request import cell_of
from lib_clipskip.values import ClipSkipValueError, format_value, pick_layers

log = logging.getLogger("sd-webui-clipskip")

#: the running grid's session, on the grid's ``p`` and (shallow copies) every cell's
GRID_ATTRIBUTE = "clipskip_grid"


def conditioning_digest(obj: Any) -> str:
    """An exact identity of every tensor and number in a conditioning structure (A1111 or Forge)."""
    digest = hashlib.blake2b(digest_size=16)
    seen: set[int] = set()

    def walk(item: Any, depth: int) -> None:
        if depth > 32:
            return
        if hasattr(item, "detach") and hasattr(item, "dtype"):
            digest.update(repr(tensor_digest(item)).encode())
        elif isinstance(item, dict):
            for key in sorted(item, key=str):
                digest.update(f"<{key}>".encode())
                walk(item[key], depth + 1)
        elif isinstance(item, (list, tuple)):
            digest.update(f"[{len(item)}".encode())
            for element in item:
                walk(element, depth + 1)
        elif item is None or isinstance(item, (bool, int, float, str)):
            digest.update(repr(item).encode())
        elif hasattr(item, "__dict__") and id(item) not in seen:
            seen.add(id(item))
            walk(vars(item), depth + 1)

    walk(obj, 0)
    return digest.hexdigest()


@dataclass
class CellRecord:
    number: int
    asked: str  # what the cell's CLIP-skip settings were
    digest: str
    resolved: str  # which layers each encoder used
    notes: tuple[str, ...] = ()


def describe_request(p: Any, state: Any) -> str:
    parts = []
    request = getattr(state, "request", None)
    if request is not None and request.source == "xyz" and not request.follow_host:
        if request.clip_skip_g is None or request.clip_skip_g == request.clip_skip:
            parts.append(f"CLIP skip {format_value(request.clip_skip)}" if request.clip_skip is not None else "CLIP skip auto")
        else:
            l_text = format_value(request.clip_skip) if request.clip_skip is not None else "auto"
            parts.append(f"CLIP-L {l_text}, OpenCLIP-G {format_value(request.clip_skip_g)}")
    cell = cell_of(p)
    host = cell.host_option if cell is not None and cell.host_option is not None else (
        (getattr(p, "override_settings", None) or {}).get("CLIP_stop_at_last_layers"))
    if host is not None:
        parts.append(f"host Clip skip {host}")
    return "; ".join(parts)


def _layer_text(value: float, depth: int) -> str:
    try:
        pick = pick_layers(value, depth)
    except ClipSkipValueError:
        return f"{format_value(value)} (beyond {depth} layers)"
    if pick.weight == 0:
        return f"layer {pick.upper} of {depth}"
    return f"between layers {pick.lower} and {pick.upper} of {depth}"


def describe_resolved(state: Any) -> str:
    """Which layer each encoder of the loaded model used: our plan where it applied, else the host's."""
    info = loaded_model_info()
    if info is None or not info.slots:
        return f"the host's own encode ({info.no_effect_reason if info else 'no model'})"
    plans = getattr(state, "plans", None) or []
    plan = plans[0] if plans else None
    parts = []
    for slot in info.slots:
        ours = plan.value_of(slot.spec.name) if plan is not None else None
        value = ours if ours is not None else slot.host_value
        whose = "" if ours is not None else " (host)"
        parts.append(f"{slot.spec.label} {_layer_text(value, slot.spec.depth)}{whose}")
    return f"{', '.join(parts)} on {info.label} ({info.host})"


@dataclass
class GridSession:
    """One X/Y/Z grid: its encoder passes and its cells' conditioning, on the grid's ``p``."""

    cache: HiddenStateCache = field(default_factory=HiddenStateCache)
    cells: list[CellRecord] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def record(self, p: Any, state: Any) -> None:
        conds = [getattr(p, name, None) for name in ("c", "uc", "hr_c", "hr_uc")]
        if conds[0] is None:
            return  # the cell produced nothing to compare
        self.cells.append(CellRecord(
            number=len(self.cells) + 1,
            asked=describe_request(p, state),
            digest=conditioning_digest(conds),
            resolved=describe_resolved(state),
            notes=tuple(getattr(state, "messages", ()) or ()),
        ))

    def identical_cells(self) -> list[str]:
        groups: dict[str, list[CellRecord]] = {}
        for cell in self.cells:
            groups.setdefault(cell.digest, []).append(cell)
        messages = []
        for cells in groups.values():
            asked = list(dict.fromkeys(cell.asked for cell in cells))
            if len(asked) < 2:
                continue  # same settings, same conditioning: nothing to explain
            names = ", ".join(f"{cell.number} ({cell.asked or 'no CLIP skip setting'})" for cell in cells)
            resolved = list(dict.fromkeys(cell.resolved for cell in cells))
            if len(resolved) == 1:
                why = f"all resolve to the same layers: {resolved[0]}"
            else:
                why = "their layers differ (" + "; ".join(resolved) + ") but produced the same output"
            notes = list(dict.fromkeys(note for cell in cells for note in cell.notes))
            message = f"X/Y/Z cells {names} got identical conditioning: {why}."
            if notes:
                message += " " + " ".join(notes)
            messages.append(message)
        return messages

    def close(self) -> None:
        self.cache.clear()

    def report(self, processed: Any) -> None:
        self.messages = self.identical_cells()
        if self.cache.passes or self.cache.reuses:
            log.info("CLIP skip: X/Y/Z grid ran %d full encoder pass(es) and reused them %d time(s)",
                     self.cache.passes, self.cache.reuses)
        if not self.messages:
            return
        for message in self.messages:
            log.warning("CLIP skip: %s", message)
        text = " ".join(self.messages)
        infotexts = getattr(processed, "infotexts", None)
        if infotexts and isinstance(infotexts[0], str):
            infotexts[0] = f"{infotexts[0]}, CLIP skip note: {json.dumps(text, ensure_ascii=False)}"
        comments = getattr(processed, "comments", "") or ""
        processed.comments = f"{comments}{text}\n"


def session_of(p: Any) -> GridSession | None:
    session = vars(p).get(GRID_ATTRIBUTE) if hasattr(p, "__dict__") else None
    return session if isinstance(session, GridSession) else None


def begin_cell(p: Any, state: Any) -> None:
    """A cell's generation starts: let its encodes reuse the grid's full passes."""
    session = session_of(p)
    if session is not None and state is not None:
        state.hidden_states = session.cache


def finish_cell(p: Any, state: Any) -> None:
    """A cell's generation ends (``postprocess``): remember what conditioning it got."""
    session = session_of(p)
    if session is None:
        return
    try:
        session.record(p, state)
    except Exception:
        log.exception("CLIP skip: could not record an X/Y/Z cell")
