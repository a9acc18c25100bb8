"""Layer explorer: how each CLIP-skip value sees one prompt, from one full text-encoder pass.

For every value N an encoder can take, its conditioning is the hidden state N layers from the
end (values count on the original, full-depth encoder, DESIGN §1), through the final LayerNorm
when the family's conditioning uses it.  Two curves per encoder:

- *to last*: cosine similarity (mean over the tokens the model sees) of N's conditioning to the
  conditioning of the smallest value the loaded encoder has (1 = the last layer; 2 on Forge's SD2,
  which loads 23 of 24 layers);
- *to neighbour*: the same between N and N - 1: where along the depth the prompt's meaning moves.

The SVG is drawn by hand (no matplotlib): axis labels, direct labels at the line ends, the
current value marked.  torch is imported lazily; nothing here knows a host.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from lib_clipskip.values import EncoderSpec, format_value


@dataclass(frozen=True)
class Curve:
    """One encoder's curves; ``values`` ascending, the other tuples aligned with it."""

    encoder: str
    label: str
    values: tuple[int, ...]
    to_last: tuple[float, ...]
    to_neighbour: tuple[float | None, ...]  # None for the first value (it has no smaller neighbour)
    current: float | None = None  # the value the next generation uses on this encoder

    @property
    def reference(self) -> int:
        return self.values[0]

    def point(self, value: int) -> float:
        return self.to_last[self.values.index(value)]


def state_index(value: float, spec: EncoderSpec) -> int:
    """Hidden-state index (layers run) of an integer value on the original-depth encoder."""
    return spec.depth - int(value) + 1


def available_values(spec: EncoderSpec, loaded_depth: int) -> list[int]:
    """Values whose layer the loaded encoder has (Forge's SD2 lacks the 24th layer, so no 1)."""
    return [v for v in range(1, spec.depth + 1) if 1 <= state_index(v, spec) <= loaded_depth]


def conditioning(states: list[Any], spec: EncoderSpec, value: int, final_norm: Any = None) -> Any:
    """The conditioning of an integer value from ``states`` (index = layers run), as the model sees it."""
    chosen = states[state_index(value, spec)]
    if spec.final_layer_norm and final_norm is not None:
        chosen = final_norm(chosen)
    return chosen


def mean_cosine(a: Any, b: Any) -> float:
    """Cosine similarity over the width, averaged over batch and tokens, in float32."""
    import torch

    a = a.detach().float().cpu()
    b = b.detach().float().cpu()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())


def curve(states: list[Any], spec: EncoderSpec, final_norm: Any = None, current: float | None = None) -> Curve:
    """Both curves for one encoder from its hidden states (``states[0]`` = embeddings)."""
    import torch

    with torch.no_grad():
        values = available_values(spec, len(states) - 1)
        if not values:
            raise ValueError(f"{spec.label}: no layer of the loaded encoder matches a CLIP-skip value")
        conds = {v: conditioning(states, spec, v, final_norm) for v in values}
        reference = conds[values[0]]
        to_last = tuple(mean_cosine(conds[v], reference) for v in values)
        to_neighbour = tuple(None if i == 0 else mean_cosine(conds[v], conds[values[i - 1]]) for i, v in enumerate(values))
    return Curve(spec.name, spec.label, tuple(values), to_last, to_neighbour, current)


# --- drawing -----------------------------------------------------------------------------------

COLOR_LAST = "#1f6fb4"
COLOR_NEIGHBOUR = "#d9731a"
COLOR_CURRENT = "#c2185b"
WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 128, 34, 46


def _ticks(values: tuple[int, ...]) -> list[int]:
    step = 1 if len(values) <= 12 else 2 if len(values) <= 24 else 4
    ticks = [v for v in values if (v - values[0]) % step == 0]
    if values[-1] not in ticks:
        ticks.append(values[-1])
    return ticks


def finite_points(curve_: Curve) -> list[float]:
    """Every plotted y that is a number (a NaN in the host's hidden states is shown as a gap)."""
    return [y for y in (*curve_.to_last, *curve_.to_neighbour) if y is not None and math.isfinite(y)]


#: tick steps a reader can read at a glance (1, 2, 2.5, 5 × a power of ten)
_NICE_STEPS = (0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5)


def y_ticks(curve_: Curve) -> list[float]:
    """Round ticks from a round value below the lowest point up to 1, four to seven of them."""
    points = finite_points(curve_)
    low = max(-1.0, min(points)) if points else 0.0
    high = min(1.0, max(points)) if points else 1.0
    span = max(high - low, 0.01)
    step = next((s for s in _NICE_STEPS if span / s <= 6), 0.5)
    start = math.floor(low / step + 1e-9) * step
    top = max(math.ceil(high / step - 1e-9) * step, start + step)
    count = round((top - start) / step)
    return [round(start + i * step, 4) for i in range(count + 1)]


def _tick_text(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.1
    decimals = 1 if abs(step * 10 - round(step * 10)) < 1e-9 else 2 if abs(step * 100 - round(step * 100)) < 1e-9 else 3
    return f"{value:.{decimals}f}"


def _svg_one(curve_: Curve, y0: float) -> str:
    """One encoder's plot as an SVG group translated down by ``y0``."""
    values = curve_.values
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = y_ticks(curve_)
    low, high = ticks[0], ticks[-1]
    span_x = max(values[-1] - values[0], 1)

    def px(v: float) -> float:
        return LEFT + (v - values[0]) * plot_w / span_x

    def py(y: float) -> float:
        return TOP + (high - y) * plot_h / (high - low)

    e = html.escape
    out = [f'<g transform="translate(0,{y0})">']
    out.append(f'<text class="clipskip-plot-title" x="{LEFT}" y="18">{e(curve_.label)}: '
               f'similarity of each value\'s conditioning</text>')
    # grid and y ticks
    for y in ticks:
        out.append(f'<line class="clipskip-grid" stroke="#e5e7eb" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}"/>')
        out.append(f'<text class="clipskip-tick" x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_tick_text(y, ticks)}</text>')
    for v in _ticks(values):
        out.append(f'<text class="clipskip-tick" x="{px(v):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{v}</text>')
    out.append(f'<line class="clipskip-axis" stroke="#6b7280" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>')
    out.append(f'<line class="clipskip-axis" stroke="#6b7280" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>')
    out.append(f'<text class="clipskip-axis-label" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h + 36}" '
               f'text-anchor="middle">CLIP skip value (1 = last layer; larger = earlier layer)</text>')
    out.append(f'<text class="clipskip-axis-label" transform="translate(14,{TOP + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">cosine similarity</text>')
    # current value
    if curve_.current is not None and values[0] <= curve_.current <= values[-1]:
        x = px(curve_.current)
        out.append(f'<line class="clipskip-current" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                   f'stroke="{COLOR_CURRENT}"/>')
        # above the plot area, on the side with room, with a halo: no curve runs through it
        right_half = x > LEFT + plot_w / 2
        out.append(f'<text class="clipskip-current-label" x="{x - 4 if right_half else x + 4:.1f}" y="{TOP - 6}" '
                   f'text-anchor="{"end" if right_half else "start"}" fill="{COLOR_CURRENT}" '
                   f'stroke="#ffffff" stroke-width="3" paint-order="stroke">now: {e(format_value(curve_.current))}</text>')
    # lines with direct labels at their right end
    series = [
        ("to_last", curve_.to_last, COLOR_LAST, f"vs skip {curve_.reference} (last)", ""),
        ("to_neighbour", curve_.to_neighbour, COLOR_NEIGHBOUR, "vs previous value", ' stroke-dasharray="5 3"'),
    ]
    ends = []
    for name, ys, color, label, dash in series:
        kept = [(v, y) for v, y in zip(values, ys) if y is not None and math.isfinite(y)]
        if not kept:
            continue
        pts = [(px(v), py(y)) for v, y in kept]
        for run in _runs(kept, values):  # a NaN breaks the line instead of the plot
            path = " ".join(f"{px(v):.1f},{py(y):.1f}" for v, y in run)
            out.append(f'<polyline class="clipskip-line-{name.replace("_", "-")}" points="{path}" fill="none" '
                       f'stroke="{color}" stroke-width="2"{dash}/>')
        for (x, y), (v, value) in zip(pts, kept):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{color}">'
                       f'<title>skip {v}: {value:.3f} {e(label)}</title></circle>')
        ends.append([pts[-1][1], color, label])
    if len(ends) == 2 and abs(ends[0][0] - ends[1][0]) < 14:  # keep the two end labels apart
        upper, lower = sorted(ends, key=lambda item: item[0])
        middle = (upper[0] + lower[0]) / 2
        upper[0], lower[0] = middle - 7, middle + 7
    for y, color, label in ends:
        out.append(f'<text class="clipskip-line-label" x="{LEFT + plot_w + 6}" y="{y + 4:.1f}" fill="{color}">'
                   f'{e(label)}</text>')
    out.append("</g>")
    return "".join(out)


def _runs(kept: list[tuple[int, float]], values: tuple[int, ...]) -> list[list[tuple[int, float]]]:
    """Consecutive stretches of plotted points (a skipped value starts a new stretch)."""
    runs: list[list[tuple[int, float]]] = []
    for v, y in kept:
        if runs and values.index(v) == values.index(runs[-1][-1][0]) + 1:
            runs[-1].append((v, y))
        else:
            runs.append([(v, y)])
    return runs


def svg(curves: list[Curve]) -> str:
    """One inline ``<svg class="clipskip-plot">`` with a plot per encoder, stacked."""
    height = HEIGHT * max(len(curves), 1)
    names = ", ".join(c.label for c in curves)
    body = "".join(_svg_one(c, i * HEIGHT) for i, c in enumerate(curves))
    return (
        f'<svg class="clipskip-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{html.escape(names)}: cosine similarity per CLIP skip value">'
        f"<title>How each layer sees this prompt ({html.escape(names)})</title>{body}</svg>"
    )


def summary(curve_: Curve) -> str:
    """One sentence on where the prompt's meaning moves most (the smallest neighbour similarity)."""
    broken = [v for v, a, b in zip(curve_.values, curve_.to_last, curve_.to_neighbour)
              if not math.isfinite(a) or (b is not None and not math.isfinite(b))]
    pairs = [(y, v) for v, y in zip(curve_.values, curve_.to_neighbour) if y is not None and math.isfinite(y)]
    text = ""
    if pairs:
        y, v = min(pairs)
        text = f"{curve_.label}: the biggest step is between skip {v - 1} and {v} (similarity {y:.2f})"
        if curve_.current is not None and int(curve_.current) in curve_.values and math.isfinite(curve_.point(int(curve_.current))):
            text += f"; your value {format_value(curve_.current)} is {curve_.point(int(curve_.current)):.2f} similar to the last layer"
        text += "."
    if broken:
        shown = ", ".join(map(str, broken[:8])) + ("…" if len(broken) > 8 else "")
        text += (f" {curve_.label}: no number at skip {shown} (the hidden states hold NaN or infinity, "
                 "e.g. a half-precision overflow); those points are left out.")
    return text.strip()
