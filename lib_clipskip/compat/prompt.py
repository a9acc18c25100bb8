"""Which LoRA / LyCORIS / embedding files a prompt uses, matched by the hosts' rules.

LoRAs (A1111 extensions-builtin/Lora/networks.py:281-304 and 650-672; Forge's
sd_forge_lora/networks.py:68-90 and 130-151 are the same): files are listed in natural
order, ``available_networks[stem]`` keeps the *last* file with a stem, each file also
answers to its alias (``ss_output_name``), and an alias that two entries claim is
"forbidden": by that name only a file stem resolves. ``<lora:NAME>`` then means
``available_networks[NAME]`` if NAME is forbidden, else the last stem or alias NAME.

Embeddings (textual_inversion.py:157-193): every ``.pt/.bin/.safetensors`` by its stem;
an image (``.png/.webp/.jxl/.avif``) only when it carries an embedding, by the ``name``
stored in it; ``*.preview.*`` and empty files never; a later file with the same name
replaces an earlier one. Words match as whole words, case-insensitively.

Stems are known from the listing. Aliases and image names need the files read, which
happens once per folder state in a background thread: a prompt (the panel, a
generation) never waits for files it does not use.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass

from .cache import ReportCache, analyze_file
from .images import IMAGE_EXTS
from .paths import host_embedding_files, host_lora_files, is_under_roots
from .report import KIND_EMBEDDING

# Same shape as the hosts' extra-network regex: <type:args>, args split on ':'.
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_LORA_TYPES = ("lora", "lyco")
LORA_EXTS = (".safetensors", ".pt", ".ckpt")  # networks.py:651
EMBEDDING_EXTS = (".safetensors", ".pt", ".bin", *IMAGE_EXTS)  # textual_inversion.py:161-177
# networks.py:684 seeds the forbidden aliases with {"none": 1, "Addams": 1}; only the
# first can match, the check lower-cases the name.
_FORBIDDEN_FROM_START = frozenset({"none"})
STILL_READING = "not found by file name; the LoRA folder's aliases (ss_output_name) are still being read, ask again in a moment"


@dataclass(frozen=True)
class PromptReference:
    kind: str  # "lora" | "embedding"
    name: str  # as written in the prompt (for embeddings: the name the host registers)
    path: str | None  # resolved file, or None with ``problem`` set
    problem: str | None = None
    note: str | None = None  # e.g. other files with the same name that the host does not use


def parse_lora_names(prompt: str) -> list[str]:
    """Names of the <lora:...>/<lyco:...> tags, in prompt order, without repeats."""
    names = []
    for match in _EXTRA_NETWORK.finditer(prompt or ""):
        if match.group(1) not in _LORA_TYPES:
            continue
        name = match.group(2).split(":")[0].strip()
        if name and name not in names:
            names.append(name)
    return names


def strip_extra_networks(prompt: str) -> str:
    return _EXTRA_NETWORK.sub(" ", prompt or "")


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _word_pattern(names) -> re.Pattern | None:
    ordered = sorted(names, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(r"(?<![\w])(" + "|".join(map(re.escape, ordered)) + r")(?![\w])", re.IGNORECASE)


def _last_wins(pairs) -> tuple[dict[str, str], dict[str, list[str]]]:
    """name -> last path, and name -> every path, for (name, path) pairs in host order."""
    chosen: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for name, path in pairs:
        chosen[name] = path
        every.setdefault(name, []).append(path)
    return chosen, every


class _Listing:
    """One walk of the folders. Never changed once built, so readers need no lock."""

    def __init__(self, lora_dirs, embedding_dirs):
        self.lora_files = host_lora_files(lora_dirs, LORA_EXTS)
        self.lora_by_stem, self.lora_stems = _last_wins((_stem(p), p) for p in self.lora_files)
        self.embedding_files = host_embedding_files(embedding_dirs, EMBEDDING_EXTS)
        self.images = [p for p in self.embedding_files if p.lower().endswith(IMAGE_EXTS)]
        self.embedding_by_name, self.embedding_names = _last_wins(
            (_stem(p), p) for p in self.embedding_files if not p.lower().endswith(IMAGE_EXTS))
        self.signature = tuple(_identity(p) for p in self.lora_files + self.embedding_files)
        self.built_at = time.monotonic()


def _identity(path: str) -> tuple:
    try:
        stat = os.stat(path)
    except OSError:
        return (path, None, None)
    return (path, stat.st_size, stat.st_mtime_ns)


class _Superseded(Exception):
    pass


class _Names:
    """What only reading the files tells: LoRA aliases, image embeddings' names. Filled
    once by a background thread; ``done`` is set when it has finished (or failed)."""

    def __init__(self, signature):
        self.signature = signature
        self.done = threading.Event()
        self.superseded = threading.Event()  # the folders changed again: stop, a newer reader runs
        self.aliases: dict[str, str] = {}
        self.forbidden: set[str] = set(_FORBIDDEN_FROM_START)
        self.embedding_by_name: dict[str, str] = {}
        self.embedding_names: dict[str, list[str]] = {}
        self.embedding_pattern: re.Pattern | None = None
        self.error: str | None = None

    def build(self, listing: _Listing, cache: ReportCache | None) -> None:
        try:
            aliases: dict[str, str] = {}
            for path in listing.lora_files:  # networks.py:654-672, in the same order
                if self.superseded.is_set():
                    raise _Superseded
                name = _stem(path)
                alias = analyze_file(path, cache, background=True).output_name or name
                if alias in aliases:
                    self.forbidden.add(alias.lower())
                aliases[name] = path
                aliases[alias] = path
            pairs = []
            for path in listing.embedding_files:
                if self.superseded.is_set():
                    raise _Superseded
                if not path.lower().endswith(IMAGE_EXTS):
                    pairs.append((_stem(path), path))
                    continue
                report = analyze_file(path, cache, background=True)
                if report.kind == KIND_EMBEDDING and report.embedding_name:
                    pairs.append((report.embedding_name, path))
            self.embedding_by_name, self.embedding_names = _last_wins(pairs)
            self.embedding_pattern = _word_pattern(self.embedding_by_name)
            self.aliases = aliases
        except _Superseded:
            self.error = "superseded"
        except Exception as exc:  # a background reader must never take the WebUI down
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()


class ModelIndex:
    """File listings of the LoRA and embedding folders, re-walked at most every ``ttl``
    seconds (or on ``refresh()``), so a panel update costs a few dict lookups.

    Thread-safe: a listing is built whole and then published by one assignment, so a
    refresh in one thread never changes what another thread is iterating."""

    def __init__(self, lora_dirs=(), embedding_dirs=(), allowed_roots=None, ttl: float = 5.0,
                 cache: ReportCache | None = None):
        self.lora_dirs = _distinct(lora_dirs)
        self.embedding_dirs = _distinct(embedding_dirs)
        self.allowed_roots = list(allowed_roots) if allowed_roots is not None else (self.lora_dirs + self.embedding_dirs)
        self.ttl = ttl
        self.cache = cache
        self._lock = threading.Lock()
        self._listing: _Listing | None = None
        self._names: _Names | None = None
        self._embedding_pattern_cache: tuple | None = None

    # --- listings -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Walk the folders again (stat only, no file is read) and, if any file changed,
        start reading aliases and image names in the background."""
        listing = _Listing(self.lora_dirs, self.embedding_dirs)
        start = None
        with self._lock:
            self._listing = listing
            if self._names is None or self._names.signature != listing.signature:
                if self._names is not None:
                    self._names.superseded.set()
                self._names = start = _Names(listing.signature)
        if start is not None:
            threading.Thread(target=start.build, args=(listing, self.cache), daemon=True, name="clipskip-compat-names").start()

    def _current(self) -> _Listing:
        listing = self._listing
        if listing is None or time.monotonic() - listing.built_at > self.ttl:
            self.refresh()
            listing = self._listing
        return listing

    def _ready_names(self, wait: float | None) -> _Names | None:
        names = self._names
        if names is None:
            return None
        if wait is None or wait > 0:
            names.done.wait(wait)
        return names if names.done.is_set() and names.error is None else None

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block until aliases and image names are read (tests, the CLI, benchmarks)."""
        self._current()
        names = self._names
        return names is not None and names.done.wait(timeout)

    @property
    def lora_by_stem(self) -> dict[str, str]:
        return self._current().lora_by_stem

    # --- resolution -------------------------------------------------------------------------

    def resolve_lora(self, name: str, wait: float | None = 0.0) -> PromptReference:
        """``wait``: seconds to wait for the aliases if the name is no file stem (None:
        as long as it takes). The default never waits: a generation asks this."""
        listing = self._current()
        path = listing.lora_by_stem.get(name)
        if path is not None:  # a stem always resolves to the last file with it (see module doc)
            return self._checked(PromptReference("lora", name, path, note=_others(listing.lora_stems[name], path)))
        names = self._ready_names(wait)
        if names is None:
            return PromptReference("lora", name, None, STILL_READING)
        if name.lower() in _FORBIDDEN_FROM_START:
            return PromptReference("lora", name, None, f"not found (the WebUI never takes {name!r} as an alias)")
        if name.lower() in names.forbidden:
            return PromptReference("lora", name, None,
                                   f"several LoRAs answer to {name!r} (file names and ss_output_name aliases): the WebUI resolves "
                                   "none of them by that name; use a file name")
        path = names.aliases.get(name)
        if path is None:
            return PromptReference("lora", name, None, "not found")
        return self._checked(PromptReference("lora", name, path))

    def embeddings_in(self, prompt: str, wait: float | None = 0.0) -> list[PromptReference]:
        listing = self._current()
        names = self._ready_names(wait)
        if names is not None:
            by_name, every, pattern = names.embedding_by_name, names.embedding_names, names.embedding_pattern
        else:  # until images are read: the other files, by stem
            by_name, every, pattern = listing.embedding_by_name, listing.embedding_names, self._listing_pattern(listing)
        if pattern is None:
            return []
        by_lower = {name.lower(): name for name in by_name}
        seen = []
        for match in pattern.finditer(strip_extra_networks(prompt)):
            name = by_lower[match.group(1).lower()]
            if name not in seen:
                seen.append(name)
        return [self._checked(PromptReference("embedding", n, by_name[n], note=_others(every[n], by_name[n]))) for n in seen]

    def _listing_pattern(self, listing: _Listing):
        cached = self._embedding_pattern_cache
        if cached is None or cached[0] is not listing:
            cached = self._embedding_pattern_cache = (listing, _word_pattern(listing.embedding_by_name))
        return cached[1]

    def resolve_prompt(self, prompt: str, wait: float | None = 0.0) -> list[PromptReference]:
        return [self.resolve_lora(n, wait) for n in parse_lora_names(prompt)] + self.embeddings_in(prompt, wait)

    def _checked(self, ref: PromptReference) -> PromptReference:
        if ref.path is not None and not is_under_roots(ref.path, self.allowed_roots):
            return PromptReference(ref.kind, ref.name, None, "outside the WebUI model folders; not inspected")
        return ref


def _distinct(folders) -> list[str]:
    """Each folder once (e.g. --lyco-dir pointing at models/Lora), in the given order."""
    seen, kept = set(), []
    for folder in folders:
        if folder and os.path.realpath(folder) not in seen:
            seen.add(os.path.realpath(folder))
            kept.append(os.fspath(folder))
    return kept


def _others(paths: list[str], chosen: str) -> str | None:
    others = [os.path.basename(p) for p in paths if p != chosen]
    if not others:
        return None
    return f"also {', '.join(others)}: the WebUI uses {os.path.basename(chosen)}, the last one it lists"


def resolve_prompt_files(prompt: str, lora_dirs, embedding_dirs, allowed_roots=None,
                         index: ModelIndex | None = None) -> list[PromptReference]:
    """One-shot form of ``ModelIndex(...).resolve_prompt(prompt)``, waiting for aliases and
    image names; keep a ModelIndex for repeated calls (the panel)."""
    index = index or ModelIndex(lora_dirs, embedding_dirs, allowed_roots)
    return index.resolve_prompt(prompt, wait=None)
