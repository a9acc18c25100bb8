"""How ``python -m lib_clipskip check`` prints its reports, the way ruff and pip print theirs: one
line per file saying what it is, its warnings indented under it, then one summary line.  Colour
only on a terminal, never with ``NO_COLOR`` set (https://no-color.org) or ``TERM=dumb``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .advice import fmt_skip
from .families import sdxl_derivative
from .report import ENCODER_LABELS, FAMILY_SDXL, FAMILY_UNKNOWN, KIND_UNKNOWN, FileReport

_ENCODER_ORDER = {name: index for index, name in enumerate(ENCODER_LABELS)}  # CLIP-L before OpenCLIP-G
_CODES = {"bold": "1", "red": "1;31", "yellow": "1;33", "green": "32", "cyan": "36", "dim": "2"}


class Style:
    """ANSI colour when ``enabled``, plain text otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, name: str, text: str) -> str:
        return f"\033[{_CODES[name]}m{text}\033[0m" if self.enabled else text


def use_colour(stream, environ: Mapping[str, str]) -> bool:
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return False
    return _windows_console_colours() if os.name == "nt" else True


def _windows_console_colours() -> bool:
    """Turn on ANSI sequences in a Windows console (off by default in the classic one)."""
    try:
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.GetStdHandle(-11)  # STD_OUTPUT_HANDLE
        mode = ctypes.c_uint32()
        if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
            return False
        return bool(kernel32.SetConsoleMode(handle, mode.value | 0x0004))  # ENABLE_VIRTUAL_TERMINAL_PROCESSING
    except Exception:  # no console, or an old Windows: plain text
        return False


def shown_path(path: str, cwd: str) -> str:
    """Relative to the current folder when inside it (as ruff shows paths), else as given."""
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative


def layers_text(layers: list[int]) -> str:
    if len(layers) > 1 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))


def what_it_is(report: FileReport) -> str:
    """'kohya LoRA for SD1, trained at clip skip 2 (ss_clip_skip=2); text encoder layers CLIP-L 0-11'."""
    if report.error:
        return "unreadable"
    if report.kind == KIND_UNKNOWN:
        return "not a LoRA or embedding"
    name = report.format_label or report.kind
    if report.family != FAMILY_UNKNOWN:
        name += f" for {report.family_label}"
        derivative = sdxl_derivative(report.trained_on) if report.family == FAMILY_SDXL else None
        if derivative:
            name += f" (trained on {derivative})"
    elif report.base_model:
        name += f", made for {report.base_model}"
    else:
        name += ", model family unknown"
    if report.trained_clip_skip is not None:
        how = report.trained_clip_skip_detail or report.trained_clip_skip_source
        name += f", trained at clip skip {fmt_skip(report.trained_clip_skip)} ({how})"
    if report.te_modules:
        name += "; text encoder layers " + ", ".join(
            f"{ENCODER_LABELS.get(encoder, encoder)} {layers_text(layers)}"
            for encoder, layers in sorted(report.te_layers.items(), key=lambda item: _ENCODER_ORDER.get(item[0], 9)))
    return name


def status(report: FileReport) -> str:
    """'unreadable', 'warnings', 'other' (not a LoRA or embedding, nothing wrong) or 'ok'."""
    if report.error:
        return "unreadable"
    if report.warnings:
        return "warnings"
    return "other" if report.kind == KIND_UNKNOWN else "ok"


def file_lines(report: FileReport, cwd: str, style: Style, quiet: bool = False) -> list[str]:
    """The file's line, then its warnings (and, unless ``quiet``, notes) indented under it."""
    lines = [f"{style('bold', shown_path(report.path, cwd))}: {what_it_is(report)}"]
    for warning in report.warnings:
        label = "error" if report.error else "warning"
        lines.append(f"  {style('red' if report.error else 'yellow', f'{label}[{warning.code}]')}: {warning.message}")
    if not quiet:
        said = {warning.message for warning in report.warnings}
        lines += [f"  {style('cyan', 'note')}: {note}" for note in report.notes if note not in said]
    return lines


def summary(reports: list[FileReport], style: Style) -> str:
    counts = {"ok": 0, "warnings": 0, "unreadable": 0, "other": 0}
    for report in reports:
        counts[status(report)] += 1
    files = f"{len(reports)} file{'s' if len(reports) != 1 else ''} checked"
    if counts["warnings"] == counts["unreadable"] == 0:
        clean = "no warnings" + (f" ({counts['other']} not a LoRA or embedding)" if counts["other"] else "")
        return f"{files}: {style('green', clean)}"
    warnings = sum(len(r.warnings) for r in reports if not r.error)
    parts = []
    if counts["warnings"]:
        parts.append(style("yellow", f"{counts['warnings']} with warnings") + f" ({warnings} in all)")
    if counts["unreadable"]:
        parts.append(style("red", f"{counts['unreadable']} unreadable"))
    if counts["ok"]:
        parts.append(f"{counts['ok']} ok")
    if counts["other"]:
        parts.append(f"{counts['other']} not a LoRA or embedding")
    return f"{files}: " + ", ".join(parts)
