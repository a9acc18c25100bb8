"""Where a generation's value comes from: the precedence of DESIGN §2, in one place.

1. an X/Y/Z cell — the extension's axes first, then the host's own ``Clip skip`` axis (read in
   the host's numbering: every encoder takes what the host does at that option, which
   ``process_images`` has set for the cell);
2. a ``<clipskip:…>`` tag in the prompt (``prompt_tag``, per batch);
3. the panel / the API's script args (source ``checkpoint`` while they are the values
   remembered for the generation's checkpoint: ``checkpoint_memory.resolve``);
4. the values remembered for the checkpoint, in place of 0 = auto (Settings toggle on);
5. the Settings defaults (a panel value of 0 = auto);
6. the host's own behaviour (nothing of ours is installed).

An X/Y/Z cell's axes only record *what they set* (``CellValues`` on the cell's ``p``, a shallow
copy per cell); the request is built once, in ``before_process``, from the panel's parsed args
with the Settings defaults — so a cell never needs to parse the panel itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lib_clipskip.values import CLIP_G_SDXL, ClipSkipRequest, Family

#: ``CellValues`` of an X/Y/Z cell, on that cell's ``p``
XYZ_ATTRIBUTE = "clipskip_xyz"
SOURCE_XYZ = "xyz"


@dataclass(frozen=True)
class CellValues:
    """What the axes of one X/Y/Z cell set (None = that axis is not in the grid)."""

    value: float | None = None  # [CLIP skip] value: every encoder
    clip_l: float | None = None  # [CLIP skip] SDXL CLIP-L
    clip_g: float | None = None  # [CLIP skip] SDXL OpenCLIP-G
    host_option: int | None = None  # the host's own "Clip skip" axis, in the host's numbering
    schedule: str | None = None  # [CLIP skip] schedule: a text ``schedule.parse_pair`` reads
    negative: str | None = None  # [CLIP skip] negative prompt: a value or schedule text

    @property
    def ours(self) -> bool:
        return any(v is not None for v in (self.value, self.clip_l, self.clip_g, self.schedule, self.negative))

    def request(self, base: ClipSkipRequest) -> ClipSkipRequest:
        """This cell's request over ``base`` (the panel's, parsed with the Settings defaults)."""
        if self.ours:
            request = base
            # a cell's constant value replaces the panel's schedule of the encoders it sets
            if self.value is not None:
                request = replace(request, clip_skip=self.value, clip_skip_g=self.value, schedule=None, schedule_g=None)
            if self.clip_l is not None:
                # CLIP-L only: OpenCLIP-G keeps what it would have had, though clip_skip changes
                g_value = request.value_for(Family.SDXL, CLIP_G_SDXL) if self.clip_g is None else self.clip_g
                request = replace(request, clip_skip=self.clip_l, clip_skip_g=g_value, schedule=None)
            if self.clip_g is not None:
                request = replace(request, clip_skip_g=self.clip_g, schedule_g=None)
            request = self._over_steps(request)
            return replace(request, enabled=True, source=SOURCE_XYZ, follow_host=False)
        if self.host_option is not None and base.enabled:
            # the panel is on, so ours would apply: the host axis's value wins, as the host means it
            return replace(base, source=SOURCE_XYZ, follow_host=True)
        return base  # the host's axis with the panel off: the host applies its own option

    def _over_steps(self, request: ClipSkipRequest) -> ClipSkipRequest:
        """The cell's schedule and negative value (texts the axis already checked) over ``request``."""
        from lib_clipskip import schedule

        if self.schedule is not None:
            main, g_value = schedule.parse_pair(self.schedule)
            (first, steps), (first_g, steps_g) = schedule.split(main), schedule.split(g_value)
            request = replace(request, schedule=steps, schedule_g=steps_g,
                              clip_skip=first if main is not None else request.clip_skip,
                              clip_skip_g=first_g if g_value is not None else request.clip_skip_g)
        if self.negative is not None:
            first, steps = schedule.split(schedule.parse_setting(self.negative, what="Negative prompt CLIP skip"))
            request = replace(request, negative=first, negative_schedule=steps)
        return request


def cell_of(p: Any) -> CellValues | None:
    cell = vars(p).get(XYZ_ATTRIBUTE) if hasattr(p, "__dict__") else None
    return cell if isinstance(cell, CellValues) else None


def set_cell(p: Any, **values: Any) -> None:
    """Record one axis's value on a cell's ``p`` (merged with the cell's other axes)."""
    vars(p)[XYZ_ATTRIBUTE] = replace(cell_of(p) or CellValues(), **values)


def decided_by_cell(p: Any) -> bool:
    """Whether an X/Y/Z cell fixes this generation's value (then a prompt tag does not)."""
    cell = cell_of(p)
    return cell is not None and (cell.ours or cell.host_option is not None)
