"""Mirrors ``modules/script_callbacks.py`` (A1111 v1.10.1; Forge dfdcbab6 the same for these).

Callbacks are kept per category in registration order; ``clear_callbacks`` runs on every
``load_scripts`` (UI reload).  The ``*_callback`` functions call them the way the host does.
"""

from __future__ import annotations

from collections import defaultdict

callback_map = defaultdict(list)


def clear_callbacks():
    callback_map.clear()


def _add(category, callback, name=None):
    callback_map[category].append(callback)


def on_ui_settings(callback, *, name=None):
    _add("ui_settings", callback, name)


def on_before_ui(callback, *, name=None):
    _add("before_ui", callback, name)


def on_infotext_pasted(callback, *, name=None):
    _add("infotext_pasted", callback, name)


def on_model_loaded(callback, *, name=None):
    _add("model_loaded", callback, name)


def on_script_unloaded(callback, *, name=None):
    _add("script_unloaded", callback, name)


def on_app_started(callback, *, name=None):
    _add("app_started", callback, name)


def on_before_token_counter(callback, *, name=None):
    _add("before_token_counter", callback, name)


def ui_settings_callback():
    for callback in callback_map["ui_settings"]:
        callback()


def before_ui_callback():
    for callback in callback_map["before_ui"]:
        callback()


def infotext_pasted_callback(infotext, params):
    for callback in callback_map["infotext_pasted"]:
        callback(infotext, params)


def model_loaded_callback(sd_model):
    for callback in callback_map["model_loaded"]:
        callback(sd_model)


def app_started_callback(demo, app):
    for callback in callback_map["app_started"]:
        callback(demo, app)


class CFGDenoiserParams:
    """``script_callbacks.CFGDenoiserParams`` (A1111 v1.10.1 ``modules/script_callbacks.py:45``; Forge the same)."""

    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond, denoiser=None):
        self.x = x
        self.image_cond = image_cond
        self.sigma = sigma
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.text_cond = text_cond
        self.text_uncond = text_uncond
        self.denoiser = denoiser


def on_cfg_denoiser(callback, *, name=None):
    _add("cfg_denoiser", callback, name)


def cfg_denoiser_callback(params):
    for callback in callback_map["cfg_denoiser"]:
        callback(params)
