"""What every host adapter offers the generation hook."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.encode import ErrorSink, encoder_layers, final_layer_norm, scoped_method, skipping
from lib_clipskip.plan import EncoderPlan, EncoderSlot, ModelInfo, SkipPlan
from lib_clipskip.values import Family


@dataclass(frozen=True)
class EncoderHandle:
    """One loaded encoder and how to make it encode at a plan's layer for one block."""

    slot: EncoderSlot
    scope: Callable[[EncoderPlan, ErrorSink], ContextManager[None]]
    #: layer explorer: within the block, every pass appends its hidden states (NLD, index = layers run)
    capture: Callable[[list[list[Any]]], ContextManager[None]] | None = None
    final_norm: Any = None  # the encoder's final LayerNorm (applied to the conditioning when the spec says so)


@dataclass(frozen=True)
class LayerStates:
    """Every hidden state of one encoder for one prompt: ``states[k]`` after k loaded layers (0 = embeddings)."""

    slot: EncoderSlot
    states: list[Any]
    final_norm: Any = None


@dataclass(frozen=True)
class LoadedModel:
    info: ModelInfo
    handles: dict[str, EncoderHandle] = field(default_factory=dict)


def transformers_handle(text_model: Any, slot: EncoderSlot) -> EncoderHandle:
    """A handle for an encoder that is a ``transformers`` CLIP text model."""

    def scope(plan: EncoderPlan, on_error: ErrorSink) -> ContextManager[None]:
        return skipping(text_model, plan.pick, plan.needs_pooled, on_error)

    def capture(calls: list[list[Any]]) -> ContextManager[None]:
        def recording(original: Callable[..., Any], _token: object) -> Callable[..., Any]:
            def forward(*args: Any, **kwargs: Any) -> Any:
                outputs = original(*args, **{**kwargs, "output_hidden_states": True})
                calls.append([state.detach() for state in outputs.hidden_states])
                return outputs

            return forward

        return scoped_method(text_model, "forward", recording)

    return EncoderHandle(slot, scope, capture, final_layer_norm(text_model))


#: the hosts' own Clip skip slider: A1111 v1.10.1 ``shared_options.py`` (1-12, step 1), Forge dfdcbab6
#: ``modules_forge/main_entry.py:121`` (the same); outside it ``hidden_states[-N]`` fails or is not a layer
HOST_OPTION_RANGE = (1, 12)


def usable_host_option(raw: Any) -> int | None:
    """The host's ``CLIP_stop_at_last_layers`` as the int it needs, or None when it can't use it."""
    if isinstance(raw, bool):
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or not number.is_integer():
        return None
    value = int(number)
    return value if HOST_OPTION_RANGE[0] <= value <= HOST_OPTION_RANGE[1] else None


def loaded_depth(text_model: Any) -> int:
    return len(encoder_layers(text_model))


def host_skip_option(opts: Any) -> int:
    """The host's ``CLIP_stop_at_last_layers`` as the int both hosts use (Forge casts with ``int()``)."""
    value = getattr(opts, "CLIP_stop_at_last_layers", 1)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 1
    return int(number) if math.isfinite(number) else 1


def webui_shared() -> Any:
    """``modules.shared`` of the running WebUI (raises ImportError without one)."""
    from modules import shared

    return shared


def webui_extra_networks() -> Any:
    """``modules.extra_networks``: the registry ``<clipskip:…>`` joins."""
    from modules import extra_networks

    return extra_networks


def webui_scripts() -> Any:
    """``modules.scripts``: where the host keeps the script modules it loaded (the X/Y/Z plot)."""
    from modules import scripts

    return scripts


def webui_prompt_parser() -> Any:
    """``modules.prompt_parser``: the host's per-step reconstruction of conditionings."""
    from modules import prompt_parser

    return prompt_parser


def webui_sd_models() -> Any:
    """``modules.sd_models``: the checkpoint list (``checkpoint_aliases``) and, in Forge, the selection."""
    from modules import sd_models

    return sd_models


def webui_queue_lock() -> Any:
    """The WebUI's generation lock (``modules.call_queue.queue_lock``), or None without one."""
    try:
        from modules import call_queue
    except Exception:
        return None
    return getattr(call_queue, "queue_lock", None)


class HostAdapter:
    name = "host"

    def shared(self) -> Any:
        return webui_shared()

    def current_model(self) -> Any:
        return self.shared().sd_model

    def checkpoint_file(self, p: Any = None) -> str | None:
        """The file of the checkpoint a generation (``p``) or the panel is for, or None.

        A ``sd_model_checkpoint`` in ``p.override_settings`` (the API) is looked up as
        ``process_images`` does (A1111 v1.10.1 ``processing.py:828``, Forge dfdcbab6 ``:825``:
        ``sd_models.checkpoint_aliases.get(name)``): our ``before_process`` runs before the host
        loads it.  Otherwise the selected checkpoint (``selected_checkpoint``)."""
        overrides = getattr(p, "override_settings", None)
        name = overrides.get("sd_model_checkpoint") if isinstance(overrides, dict) else None
        info = None
        if isinstance(name, str) and name:
            try:
                info = webui_sd_models().checkpoint_aliases.get(name)
            except Exception:
                info = None
        if info is None:
            info = self.selected_checkpoint()
        filename = getattr(info, "filename", None)
        return filename if isinstance(filename, str) and filename else None

    def selected_checkpoint(self) -> Any:
        """A1111 loads a checkpoint as soon as it is selected: the loaded model's
        ``sd_checkpoint_info`` (``sd_models.py:529``, a ``CheckpointInfo`` with ``filename``)."""
        return getattr(self.current_model(), "sd_checkpoint_info", None)

    def inspect(self, sd_model: Any, host_option: int | None = None) -> LoadedModel:
        """What is loaded and what the host does by itself (``host_value``, our numbering) — at
        its current ``Clip skip`` option, or at ``host_option`` (the host's numbering)."""
        raise NotImplementedError

    def reproducing_option(self, family: Family, values: list[float]) -> int | None:
        """The host's own ``Clip skip`` option that gives the same conditioning as ``values`` (our
        numbering, one per encoder of ``family``), or None when it has none.  A1111 v1.10.1 follows
        the option only on SD1 (``sd_hijack_clip.py:351``; SD2 and SDXL ignore it, or CLIP-L alone
        with "Clip skip SDXL", which infotext does not record)."""
        if family is Family.SD1 and len(values) == 1 and float(values[0]).is_integer():
            return int(values[0])
        return None

    def host_option(self) -> int:
        """The host's own ``Clip skip`` now (what it keeps when a paste carries none)."""
        return host_skip_option(self.shared().opts)

    def clip_l_skip_sdxl(self) -> bool:
        """A1111's "Clip skip SDXL" (CLIP-L follows the option on SDXL); Forge has no such switch."""
        return False

    def written_option(self, value: Any) -> Any:
        """The host's ``Clip skip`` as its ``create_infotext`` writes it (A1111 ``processing.py:759``: as is)."""
        return value

    def call_conds_function(self, args: tuple, kwargs: dict) -> Any:
        """What ``get_conds_with_caching(function, required_prompts, steps, caches, extra_network_data,
        hires_steps=None)`` calls on a miss: ``function(sd_model, required_prompts, steps, hires_steps,
        opts.use_old_scheduling)`` (A1111 v1.10.1 ``processing.py:487-488``, Forge dfdcbab6 ``:470-474``, both inside
        ``devices.autocast()``)."""
        names = ("function", "required_prompts", "steps", "caches", "extra_network_data", "hires_steps")
        from modules import devices

        bound = dict(zip(names, args))
        bound.update(kwargs)
        shared = self.shared()
        with devices.autocast():  # as the host calls it
            return bound["function"](shared.sd_model, bound["required_prompts"], bound["steps"],
                                     bound.get("hires_steps"), shared.opts.use_old_scheduling)

    def encode_prompt(self, sd_model: Any, prompt: str) -> Any:
        """The host's own conditioning of one prompt (tokens, embeddings, chunks), outside a generation."""
        return sd_model.get_learned_conditioning([prompt])

    def lora_folders(self, cmd_opts: Any) -> list[Any]:
        """Where the host's LoRA loader looks: A1111 v1.10.1 ``--lora-dir`` and
        ``--lyco-dir-backcompat`` (``extensions-builtin/Lora/networks.py:651``)."""
        return [getattr(cmd_opts, name, None) for name in ("lora_dir", "lyco_dir_backcompat")]

    def loaded_networks(self) -> list[str] | None:
        """The LoRAs applied to the text encoder now, outside a generation: both hosts keep the last
        generation's (A1111 ``extensions-builtin/Lora/networks.py`` applies ``loaded_networks`` to
        the weights at the next forward; Forge ``sd_forge_lora/networks.py`` keeps the patched CLIP
        in ``forge_objects``).  None when the host's LoRA module is not loaded."""
        import sys

        networks = getattr(sys.modules.get("networks"), "loaded_networks", None)
        if not isinstance(networks, list):
            return None
        return [str(getattr(n, "mentioned_name", None) or getattr(n, "name", "?")) for n in networks]

    def layer_states(self, sd_model: Any, prompt: str) -> dict[str, LayerStates]:
        """One full text-encoder pass for ``prompt``: every hidden state of every encoder (layer explorer)."""
        import torch

        loaded = self.inspect(sd_model)
        calls: dict[str, list[list[Any]]] = {name: [] for name, handle in loaded.handles.items() if handle.capture}
        if not calls:
            return {}
        with torch.no_grad(), contextlib.ExitStack() as stack:
            for name, passes in calls.items():
                stack.enter_context(loaded.handles[name].capture(passes))
            self.encode_prompt(sd_model, prompt)
        result = {}
        for name, passes in calls.items():
            if passes:  # long prompts run one pass per 75-token chunk: join them along the tokens
                states = [torch.cat([one[k] for one in passes], dim=1) for k in range(len(passes[0]))]
                handle = loaded.handles[name]
                result[name] = LayerStates(handle.slot, states, handle.final_norm)
        return result

    @contextlib.contextmanager
    def encoding(self, loaded: LoadedModel, plan: SkipPlan, on_error: ErrorSink) -> Iterator[None]:
        """Within the block, every encoder named by the plan encodes at its planned layer."""
        with contextlib.ExitStack() as stack:
            for encoder in plan.encoders:
                stack.enter_context(loaded.handles[encoder.name].scope(encoder, on_error))
            yield
