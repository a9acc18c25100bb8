"""The extension's options in the WebUI's Settings: one table drives registration, reading and validation.

Every option is a plain ``OptionInfo`` in its own section, so it can go in Quicksettings and is
saved in ``config.json`` like every other option.  Reading never raises and never writes: a value
that a user hand-edited into something unusable (``"abc"``, 99, NaN, a list) falls back to the
option's default, with one log message per bad value.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from lib_clipskip.values import ClipSkipValueError, Family, default_values, format_value, parse_value

log = logging.getLogger("sd-webui-clipskip")

SECTION = ("clipskip", "CLIP skip")
#: the Settings page's "Stable Diffusion" category, where the hosts' own Clip skip lives
#: (A1111 v1.10.1 ``shared_options.py:28`` registers it; ``OptionInfo(category_id=…)``)
CATEGORY = "sd"


@dataclass(frozen=True)
class Option:
    key: str
    default: Any
    label: str
    info: str = ""
    minimum: float | None = None  # set for sliders (numeric options)
    maximum: float | None = None
    #: which encoder defaults a numeric option sets: (family, encoder name) pairs
    targets: tuple[tuple[Family, str], ...] = ()

    @property
    def numeric(self) -> bool:
        return self.minimum is not None


OPTIONS: tuple[Option, ...] = (
    Option("clipskip_enabled", True, "Enable CLIP skip extension",
           "when off, the panel, API arguments and <clipskip:…> tags have no effect"),
    Option("clipskip_default_sd1", 1.0, "Default for SD 1.x (CLIP ViT-L)",
           "used when the panel is enabled with 0 = auto; 1 = last layer", 1, 12, ((Family.SD1, "clip_l"),)),
    Option("clipskip_default_sd2", 2.0, "Default for SD 2.x (OpenCLIP ViT-H)",
           "used when the panel is enabled with 0 = auto; 2 = what SD 2.x was trained with", 1, 24, ((Family.SD2, "clip_h"),)),
    Option("clipskip_default_sdxl_l", 2.0, "Default for SDXL CLIP-L",
           "used when the panel is enabled with 0 = auto; 2 = what SDXL was trained with", 1, 12, ((Family.SDXL, "clip_l"),)),
    Option("clipskip_default_sdxl_g", 2.0, "Default for SDXL OpenCLIP-G (also the refiner)",
           "used when the panel is enabled with 0 = auto; 2 = what SDXL was trained with", 1, 32,
           ((Family.SDXL, "clip_g"), (Family.SDXL_REFINER, "clip_g"))),
    Option("clipskip_console_warnings", True, "Show compatibility warnings in the console at generation"),
    Option("clipskip_write_infotext", True, "Write the extension's values to infotext",
           "\"CLIP skip ext\" keys; the host's own \"Clip skip\" is kept truthful either way"),
    Option("clipskip_remember_per_checkpoint", True, "Use the values remembered for the selected checkpoint",
           "the panel's \"Remember for this checkpoint\" stores them in <checkpoint>.json; loaded into the panel "
           "when that checkpoint is selected, and used by the panel or API at 0 = auto"),
)
BY_KEY = {option.key: option for option in OPTIONS}
SLIDER_STEP = 0.05

_warned: set[tuple[str, str]] = set()


def register(shared: Any = None) -> None:
    """Add every option to ``shared.opts`` (``script_callbacks.on_ui_settings``; also in API-only mode)."""
    import gradio as gr  # the component class is only needed once the settings UI is built

    if shared is None:
        from lib_clipskip.hosts.base import webui_shared

        shared = webui_shared()

    for option in OPTIONS:
        if option.numeric:
            info = shared.OptionInfo(option.default, option.label, gr.Slider,
                                     {"minimum": option.minimum, "maximum": option.maximum, "step": SLIDER_STEP},
                                     section=SECTION, category_id=CATEGORY)
        else:
            info = shared.OptionInfo(option.default, option.label, section=SECTION, category_id=CATEGORY)
        if option.info:
            info = info.info(option.info)
        shared.opts.add_option(option.key, info)


def validate(option: Option, raw: Any) -> Any:
    """The value to use for ``raw``; raises ``ClipSkipValueError`` with a sentence for the user."""
    if not option.numeric:
        if isinstance(raw, bool):
            return raw
        raise ClipSkipValueError(f"{raw!r} is not true or false")
    if isinstance(raw, str):
        raise ClipSkipValueError(f"{raw[:40]!r} is a text, not a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ClipSkipValueError(f"{raw} is not a finite number")
    value = parse_value(raw, what="the value")
    if not option.minimum <= value <= option.maximum:
        raise ClipSkipValueError(
            f"{format_value(value)} is outside {format_value(option.minimum)}…{format_value(option.maximum)}")
    return value


def read(key: str, opts: Any = None) -> Any:
    """The current, valid value of one option (its default when missing, unregistered or bad)."""
    option = BY_KEY[key]
    if opts is None:
        opts = _opts()
    if opts is None:
        return option.default
    try:
        data = getattr(opts, "data", None)
        raw = data[key] if isinstance(data, dict) and key in data else getattr(opts, key, option.default)
    except Exception:  # an Options object that is half set up: behave as the default
        return option.default
    try:
        return validate(option, raw)
    except (ClipSkipValueError, TypeError, ValueError, OverflowError) as error:
        shown = repr(raw)[:60]
        if (key, shown) not in _warned:
            _warned.add((key, shown))
            log.warning("CLIP skip: Settings value %s = %s in config.json is unusable (%s); using the default %s.",
                        key, shown, error, option.default)
        return option.default


def _opts() -> Any:
    from lib_clipskip.hosts.base import webui_shared

    try:
        shared = webui_shared()
    except Exception:  # no WebUI (CLI, unit tests): defaults
        return None
    return getattr(shared, "opts", None)


@dataclass(frozen=True)
class Settings:
    enabled: bool
    defaults: tuple[tuple[Family, str, float], ...]
    console_warnings: bool
    write_infotext: bool
    remember_per_checkpoint: bool = True


def current(opts: Any = None) -> Settings:
    """A snapshot of every option, validated; read once per generation (options may change between)."""
    if opts is None:
        opts = _opts()
    overrides = {}
    for option in OPTIONS:
        if option.numeric:
            value = read(option.key, opts)
            overrides.update({target: float(value) for target in option.targets})
    return Settings(
        enabled=read("clipskip_enabled", opts),
        defaults=default_values(overrides),
        console_warnings=read("clipskip_console_warnings", opts),
        write_infotext=read("clipskip_write_infotext", opts),
        remember_per_checkpoint=read("clipskip_remember_per_checkpoint", opts),
    )

