"""Values remembered per checkpoint, in the checkpoint's own user-metadata file, and the value
its creator recorded in its safetensors metadata.

**Where.** Both hosts keep a checkpoint's user metadata ("Edit metadata" of the extra-networks
Checkpoints tab) in ``os.path.splitext(filename)[0] + '.json'`` beside the model: read by
``modules/extra_networks.py:209-225`` ``get_user_metadata`` (``json.load``, any error reported
and ``{}`` used), written by ``modules/ui_extra_networks_user_metadata.py:131-139``
``write_user_metadata`` (``json.dump(metadata, file, indent=4, ensure_ascii=False)``, the whole
dict: ``description``, ``notes``, ``vae`` — Forge ``vae_te``, ``sd_version_str`` —
``ui_extra_networks_checkpoints_user_metadata.py:13-20``).  A1111 v1.10.1 and Forge dfdcbab6
are identical there.  We own one key, ``KEY``; every other key of the file is kept as it is.

**Safety.** The file is read bounded (``MAX_BYTES``); a file that is too large, not JSON or not
a JSON object is never overwritten (the user's notes stay; the panel says why).  Writes go to a
temporary file in the same folder, then ``os.replace``: a crash leaves the old file or the new.

**Creator's value.** kohya sd-scripts writes ``--clip_skip`` as ``ss_clip_skip`` (a string,
``"2"`` or ``"None"``) and as ``modelspec.encoder_layer`` (``library/sai_model_spec.py``: the same
number), in A1111's numbering ("2" = penultimate) except on SD2, where kohya counts the 23-layer
encoder (``compat.trained.set_recorded_skip``).  It is read with the bounded header reader of
``lib_clipskip.compat.readers``.  kohya ignores clip skip when training SDXL: no suggestion there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from lib_clipskip.values import ARG_NAMES, ClipSkipValueError, Family, format_value, parse_value

log = logging.getLogger("sd-webui-clipskip")

#: our key in ``<checkpoint>.json``
KEY = "sd-webui-clipskip"
#: a user-metadata file above this is not read (nor ever rewritten): real ones are a few kB
MAX_BYTES = 1_000_000
SOURCE = "checkpoint"
_FIELDS = ARG_NAMES[1:]  # clip_skip, clip_skip_g, schedule, clip_skip_negative


def metadata_path(checkpoint_file: str) -> str:
    """``<checkpoint>.json``, as A1111 ``extra_networks.py:213-214`` names it."""
    return os.path.splitext(checkpoint_file)[0] + ".json"


@dataclass(frozen=True)
class Memory:
    """Remembered panel values: numbers 0 = auto, texts "" = none (the panel's own conventions)."""

    clip_skip: float = 0.0
    clip_skip_g: float = 0.0
    schedule: str = ""
    clip_skip_negative: str = ""

    def args(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def empty(self) -> bool:
        return self == Memory()

    def describe(self) -> str:
        parts = [f"CLIP skip {format_value(self.clip_skip) if self.clip_skip else 'auto'}"]
        if self.clip_skip_g:
            parts.append(f"OpenCLIP-G {format_value(self.clip_skip_g)}")
        if self.schedule:
            parts.append(f"over the steps {self.schedule}")
        if self.clip_skip_negative:
            parts.append(f"negative {self.clip_skip_negative}")
        return ", ".join(parts)


def _number(raw: Any, what: str) -> float:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "auto")) or (
            isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw == 0):
        return 0.0
    return parse_value(raw, what=what)


def _text(raw: Any, what: str, check) -> str:
    if raw is None or (isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw == 0):
        return ""
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise ClipSkipValueError(f"{what} {str(raw)[:40]!r} is not a text.")
    text = str(raw).strip()
    if text and text.lower() not in ("auto", "0", "0.0"):
        check(text)
        return text
    return ""


def memory_from(raw: Any) -> Memory:
    """Validate values (our key's dict, or the panel's args); raises ``ClipSkipValueError``."""
    from lib_clipskip import schedule

    if isinstance(raw, (list, tuple)):
        raw = dict(zip(ARG_NAMES, raw))
    if not isinstance(raw, dict):
        raise ClipSkipValueError(f"{str(raw)[:40]!r} is not a set of values.")
    return Memory(
        _number(raw.get("clip_skip"), "CLIP skip"),
        _number(raw.get("clip_skip_g"), "OpenCLIP-G CLIP skip"),
        _text(raw.get("schedule"), "The schedule", schedule.parse_pair),
        _text(raw.get("clip_skip_negative"), "Negative prompt CLIP skip", schedule.parse_setting),
    )


# --- the user-metadata file -------------------------------------------------------------------


class Unusable(Exception):
    """The user-metadata file can't be used; ``str(error)`` says why, in one sentence."""


def read_user_metadata(path: str) -> dict:
    """The file's dict (``{}`` when there is none); raises ``Unusable`` and never changes the file."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_BYTES:
                raise Unusable(f"{name} is {size:,} bytes, more than the {MAX_BYTES:,} this extension reads; it is left as it is.")
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise Unusable(f"{name} can't be read ({error.strerror or error}).") from None
    if len(data) > MAX_BYTES:
        raise Unusable(f"{name} is larger than the {MAX_BYTES:,} bytes this extension reads; it is left as it is.")
    if not data.strip():
        return {}
    try:
        metadata = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Unusable(f"{name} is not valid JSON ({str(error)[:80]}); it is left as it is.") from None
    if not isinstance(metadata, dict):
        raise Unusable(f"{name} holds a JSON {type(metadata).__name__}, not an object; it is left as it is.")
    return metadata


_cache: dict[str, tuple[tuple, Memory | None, str | None]] = {}
_lock = threading.Lock()


def _stamp(path: str) -> tuple:
    try:
        stat = os.stat(path)
    except OSError:
        return ()
    return (stat.st_mtime_ns, stat.st_size)


def load(checkpoint_file: str | None) -> tuple[Memory | None, str | None]:
    """(the remembered values or None, a problem to show or None); cached per file state, never raises."""
    if not checkpoint_file:
        return None, None
    path = metadata_path(checkpoint_file)
    stamp = _stamp(path)
    with _lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    memory, problem = None, None
    try:
        entry = read_user_metadata(path).get(KEY) if stamp else None
        if entry is not None:
            memory = memory_from(entry)
    except Unusable as error:
        problem = str(error)
    except ClipSkipValueError as error:
        problem = f"The values remembered in {os.path.basename(path)} are unusable: {error}"
    with _lock:
        _cache[path] = (stamp, memory, problem)
    return memory, problem


def remember(checkpoint_file: str | None, args: Any) -> tuple[bool, str]:
    """Store the panel's values for this checkpoint (all auto: forget them). (saved, message)."""
    if not checkpoint_file:
        return False, "No checkpoint is loaded: nothing to remember the values for."
    try:
        memory = memory_from(args)
    except ClipSkipValueError as error:
        return False, f"Not remembered: {error}"
    path = metadata_path(checkpoint_file)
    name = os.path.basename(path)
    try:
        metadata = read_user_metadata(path)
    except Unusable as error:
        return False, f"Not remembered: {error}"
    if memory.empty:
        if KEY not in metadata:
            return True, "Nothing was remembered for this checkpoint."
        del metadata[KEY]
        done = f"Forgotten: this checkpoint's values were removed from {name}."
    else:
        metadata[KEY] = {field: int(value) if isinstance(value, float) and value.is_integer() else value
                         for field, value in memory.args().items()}
        done = f"Remembered for this checkpoint in {name}: {memory.describe()}."
    try:
        write_atomically(path, metadata)
    except OSError as error:
        return False, f"Not remembered: {name} can't be written ({error.strerror or error})."
    return True, done


def write_atomically(path: str, metadata: dict) -> None:
    """As the host writes it (``json.dump(…, indent=4, ensure_ascii=False)``), via a temporary file."""
    folder = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".clipskip-", suffix=".json.tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf8") as file:
            json.dump(metadata, file, indent=4, ensure_ascii=False)
        try:
            os.chmod(temporary, os.stat(path).st_mode & 0o777)
        except OSError:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with _lock:
        _cache.pop(path, None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- a generation's request -------------------------------------------------------------------


def same_values(args: Any, memory: Memory) -> bool:
    """Whether the panel's args hold exactly the remembered values (then their source is the checkpoint)."""
    try:
        return memory_from(args) == memory
    except ClipSkipValueError:
        return False


def resolve(request: Any, args: Any, memory: Memory | None, defaults: Any = None) -> Any:
    """The request with the checkpoint's memory: the panel's values when they are the remembered
    ones (source ``checkpoint``), or the memory in place of "auto" (panel or API at 0 with no
    schedule); otherwise ``request`` unchanged.  ``args`` are the script args (list or dict)."""
    from dataclasses import replace

    from lib_clipskip.values import request_from_args

    if memory is None or memory.empty or not getattr(request, "enabled", False):
        return request
    if isinstance(args, (list, tuple)) and args and isinstance(args[0], dict):
        args = args[0]
    raw = dict(args) if isinstance(args, dict) else dict(zip(ARG_NAMES, args or ()))
    if same_values(raw, memory):
        return replace(request, source=SOURCE)
    if _number_or_none(raw.get("clip_skip")) is None and not str(raw.get("schedule") or "").strip():
        filled = {**memory.args(), "enabled": True}
        if str(raw.get("clip_skip_negative") or "").strip() not in ("", "0", "auto"):
            filled["clip_skip_negative"] = raw["clip_skip_negative"]
        parsed = request_from_args(filled, source=SOURCE, defaults=defaults if defaults is not None else request.defaults)
        if parsed.request.enabled and not parsed.messages:
            return parsed.request
    return request


def _number_or_none(raw: Any) -> float | None:
    try:
        return _number(raw, "CLIP skip") or None
    except ClipSkipValueError:
        return -1.0  # a bad value is not "auto": the panel's own handling reports it


# --- the panel: load on a checkpoint change ---------------------------------------------------


def on_checkpoint(seen: Any, checkpoint: str | None, memory: Memory | None, current: tuple, active: bool):
    """What the panel does when a refresh sees ``checkpoint``: (new state, values to put in the
    panel or None).  ``seen`` is the page's state (None at first); ``current`` the panel's
    ``(enabled, clip_skip, clip_skip_g, schedule, negative)``.  Loading turns the panel on; leaving
    a checkpoint whose loaded values were not changed puts back what the panel had before."""
    seen = dict(seen) if isinstance(seen, dict) else {}
    if "checkpoint" in seen and seen["checkpoint"] == checkpoint:
        return seen, None
    seen["checkpoint"] = checkpoint
    loaded, before = seen.get("loaded"), seen.get("before")
    untouched = loaded is not None and tuple(loaded) == tuple(current)
    if active and memory is not None and not memory.empty:
        values = (True, *memory.args().values())
        seen.update(loaded=values, before=before if untouched else tuple(current))
        return seen, values
    seen.update(loaded=None, before=None)
    if untouched and before is not None:
        return seen, tuple(before)
    return seen, None


# --- what the creator recorded ----------------------------------------------------------------

_suggestions: dict[str, tuple[tuple, tuple[float, str] | None]] = {}


def creator_value(checkpoint_file: str | None, family: Family) -> tuple[float, str] | None:
    """(value in our numbering, where it was found) from the checkpoint's safetensors metadata."""
    if not checkpoint_file or family not in (Family.SD1, Family.SD2) or not checkpoint_file.lower().endswith(".safetensors"):
        return None
    stamp = _stamp(checkpoint_file)
    key = f"{checkpoint_file}|{family.value}"
    cached = _suggestions.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found = None
    try:
        from lib_clipskip.compat.readers import SafetensorsFile
        from lib_clipskip.compat.trained import parse_skip

        with SafetensorsFile(checkpoint_file) as file:
            metadata = file.metadata
        for meta_key in ("ss_clip_skip", "modelspec.encoder_layer"):
            value = parse_skip(metadata.get(meta_key))
            if value is not None:
                detail = f"{meta_key}={metadata[meta_key]}"
                if family is Family.SD2:  # kohya counts SD2's 23-layer encoder
                    value += 1
                    detail += f" (kohya counts SD2's 23 layers: clip skip {format_value(value)} here)"
                found = (float(value), detail)
                break
    except Exception as error:  # an unreadable header is no suggestion, not a panel error
        log.debug("CLIP skip: no creator's value from %s: %s", checkpoint_file, error)
    _suggestions[key] = (stamp, found)
    return found
