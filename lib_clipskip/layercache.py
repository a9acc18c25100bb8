"""One encoder pass per prompt while an X/Y/Z grid runs.

A grid over K skip values asks for the same prompts K times; only the layer picked differs.
While a grid runs, every truncated encode of a ``transformers`` text model goes through a
``HiddenStateCache``: the first request for a prompt runs the *full* encoder once and keeps
all its hidden states; every other value of that prompt picks its layer from them.  Pooled
outputs still come from that pass's full last layer.

The key is the host's own cond-cache key minus the skip, at the level where the encoder sees
it: the text model object, its input tokens (and masks), the textual-inversion vectors the
host is about to paste into the embeddings, and the generation's scope (checkpoint, LoRA /
extra-network state, weight-storage options) that ``scope_key`` builds from the host's
``get_conds_with_caching`` arguments.  Anything the key cannot see makes it ``None``, and that
call encodes normally.

The cache lives on the grid's ``p`` (see ``lib_clipskip.xyz``), is reached through a context
variable only inside one conditioning call, and is cleared when the grid ends.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

#: (cache, scope) for the conditioning call running now, or None outside a grid
_ACTIVE: ContextVar[tuple[HiddenStateCache, tuple] | None] = ContextVar("clipskip_hidden_state_cache", default=None)
#: extra-network names that are not weights (our own prompt tag)
_NOT_WEIGHTS = frozenset({"clipskip"})


def tensor_digest(tensor: Any) -> tuple:
    """A hashable, exact identity of a tensor's contents."""
    data = tensor.detach().cpu().contiguous().reshape(-1)
    raw = data.view(dtype=__import__("torch").uint8).numpy().tobytes() if data.numel() else b""
    return (str(tensor.dtype), tuple(tensor.shape), hashlib.blake2b(raw, digest_size=16).hexdigest())


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


class HiddenStateCache:
    """Full-pass outputs by key; counts passes and reuses so tests and benchmarks can show them."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Any] = {}
        self.passes = 0
        self.reuses = 0

    def clear(self) -> None:
        self.entries.clear()

    def full_pass(self, key: tuple, run: Any) -> Any:
        outputs = self.entries.get(key)
        if outputs is None:
            outputs = run()
            self.entries[key] = outputs
            self.passes += 1
        else:
            self.reuses += 1
        return outputs


@contextlib.contextmanager
def reusing(cache: HiddenStateCache | None, scope: tuple | None) -> Iterator[None]:
    """Within the block, truncated encodes reuse ``cache`` (no-op when either is None)."""
    if cache is None or scope is None:
        yield
        return
    token = _ACTIVE.set((cache, scope))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def network_key(extra_network_data: Any) -> tuple:
    """The weight-changing part of the host's ``extra_network_data`` (``{name: [ExtraNetworkParams]}``)."""
    if not extra_network_data:
        return ()
    key = []
    for name, params in sorted(dict(extra_network_data).items(), key=lambda item: str(item[0])):
        if name in _NOT_WEIGHTS:
            continue
        key.append((str(name), tuple(tuple(map(str, getattr(param, "items", [param]))) for param in params)))
    return tuple(key)


def scope_key(sd_model: Any, opts: Any, args: tuple, kwargs: dict) -> tuple | None:
    """From ``get_conds_with_caching(function, prompts, steps, caches, extra_network_data, …)`` arguments."""
    try:
        extra = kwargs["extra_network_data"] if "extra_network_data" in kwargs else (args[4] if len(args) > 4 else None)
        return (
            id(sd_model),
            getattr(sd_model, "sd_checkpoint_info", None),
            network_key(extra),
            getattr(opts, "fp8_storage", None),
            getattr(opts, "cache_fp16_weight", None),
        )
    except Exception:  # an unknown shape of arguments: no reuse, never a wrong hit
        return None


def _fixes_key(model: Any) -> tuple | None:
    """The TI vectors the host queued on the embeddings wrapper for this forward (``()`` for none)."""
    inner = getattr(model, "text_model", model)
    token_embedding = getattr(getattr(inner, "embeddings", None), "token_embedding", None)
    if token_embedding is None:
        return None
    holder = next((getattr(token_embedding, name) for name in ("embeddings", "holder", "hijack")
                   if hasattr(getattr(token_embedding, name, None), "fixes")), None)
    if holder is None:
        # a plain embedding takes no TI; an unknown wrapper might: don't reuse
        return () if type(token_embedding).__name__ == "Embedding" else None
    fixes = holder.fixes
    if not fixes:
        return ()
    key = []
    for row in fixes:
        entries = []
        for offset, embedding in row:
            vec = embedding.vec
            vectors = tuple(sorted((k, tensor_digest(v)) for k, v in vec.items())) if isinstance(vec, dict) else tensor_digest(vec)
            entries.append((int(offset), str(getattr(embedding, "name", "")), vectors))
        key.append(tuple(entries))
    return tuple(key)


def _consume_fixes(model: Any) -> None:
    """What the embeddings wrapper does on its forward: the queued fixes are used up."""
    inner = getattr(model, "text_model", model)
    token_embedding = getattr(getattr(inner, "embeddings", None), "token_embedding", None)
    for name in ("embeddings", "holder", "hijack"):
        holder = getattr(token_embedding, name, None)
        if hasattr(holder, "fixes"):
            holder.fixes = None
            return


def forward_key(model: Any, scope: tuple, args: tuple, kwargs: dict) -> tuple | None:
    parts: list[Any] = [id(model), scope]
    for value in args:
        if not _is_tensor(value):
            return None
        parts.append(tensor_digest(value))
    for name in sorted(kwargs):
        if name in ("output_hidden_states", "return_dict"):
            continue
        value = kwargs[name]
        if _is_tensor(value):
            parts.append((name, tensor_digest(value)))
        elif value is None or isinstance(value, (bool, int, float, str)):
            parts.append((name, value))
        else:
            return None
    fixes = _fixes_key(model)
    if fixes is None:
        return None
    parts.append(fixes)
    return tuple(parts)


def reused_outputs(model: Any, original_forward: Any, args: tuple, kwargs: dict) -> Any:
    """A fresh copy of the full pass's outputs for this forward, or None when no grid cache applies.

    ``kwargs`` must already ask for every hidden state.
    """
    active = _ACTIVE.get()
    if active is None:
        return None
    cache, scope = active
    key = forward_key(model, scope, args, kwargs)
    if key is None:
        return None
    hit = key in cache.entries
    outputs = cache.full_pass(key, lambda: original_forward(*args, **kwargs))
    if hit:
        _consume_fixes(model)
    return type(outputs)(**dict(outputs.items()))  # the host may reassign fields: never on the kept pass


def reused_block_states(owner: Any, inputs: tuple, run_all: Any) -> list | None:
    """Every block's output of an OpenCLIP tower for these (already embedded) inputs, or None.

    ``run_all()`` returns ``[x, block_1(x), …, block_L(…)]``; its result is kept for the grid.
    The embedded input already holds the TI vectors, so tokens and TI need no key of their own.
    """
    active = _ACTIVE.get()
    if active is None:
        return None
    cache, scope = active
    parts: list[Any] = [id(owner), scope]
    for value in inputs:
        if value is None:
            parts.append(None)
        elif _is_tensor(value):
            parts.append(tensor_digest(value))
        else:
            return None
    return cache.full_pass(tuple(parts), run_all)
