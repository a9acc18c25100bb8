"""Which LoRA / LyCORIS / embedding files a prompt uses, matched the way the hosts match
them: ``<lora:NAME:...>`` / ``<lyco:NAME:...>`` by file stem, then by the
``ss_output_name`` alias; embeddings by file stem as a whole word (case-insensitive,
like the CLIP tokenizer)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from .cache import ReportCache, analyze_file
from .paths import is_under_roots, walk_model_files

# Same shape as the hosts' extra-network regex: <type:args>, args split on ':'.
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_LORA_TYPES = ("lora", "lyco")
LORA_EXTS = (".safetensors", ".pt", ".ckpt")
EMBEDDING_EXTS = (".safetensors", ".pt", ".bin", ".png")


@dataclass(frozen=True)
class PromptReference:
    kind: str  # "lora" | "embedding"
    name: str  # as written in the prompt (for embeddings: the file stem)
    path: str | None  # resolved file, or None with ``problem`` set
    problem: str | None = None


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


class ModelIndex:
    """File listings of the LoRA and embedding folders, re-walked at most every ``ttl``
    seconds (or on ``refresh()``), so a panel update costs a few dict lookups."""

    def __init__(
        self,
        lora_dirs=(),
        embedding_dirs=(),
        allowed_roots=None,
        ttl: float = 5.0,
        cache: ReportCache | None = None,
    ):
        self.lora_dirs = [os.fspath(d) for d in lora_dirs if d]
        self.embedding_dirs = [os.fspath(d) for d in embedding_dirs if d]
        self.allowed_roots = list(allowed_roots) if allowed_roots is not None else (self.lora_dirs + self.embedding_dirs)
        self.ttl = ttl
        self.cache = cache
        self._built_at = None
        self._aliases = None

    def refresh(self) -> None:
        self.lora_by_stem: dict[str, str] = {}
        for folder in self.lora_dirs:
            for path in walk_model_files(folder, LORA_EXTS):
                self.lora_by_stem.setdefault(_stem(path), path)
        self.embedding_by_stem: dict[str, str] = {}
        for folder in self.embedding_dirs:
            for path in walk_model_files(folder, EMBEDDING_EXTS):
                self.embedding_by_stem.setdefault(_stem(path), path)
        stems = sorted(self.embedding_by_stem, key=len, reverse=True)
        self._embedding_pattern = (
            re.compile(
                r"(?<![\w])(" + "|".join(map(re.escape, stems)) + r")(?![\w])",
                re.IGNORECASE,
            )
            if stems
            else None
        )
        self._embedding_by_lower = {s.lower(): s for s in stems}
        self._aliases = None
        self._built_at = time.monotonic()

    def _ensure_fresh(self) -> None:
        if self._built_at is None or time.monotonic() - self._built_at > self.ttl:
            self.refresh()

    def _alias_map(self) -> dict[str, str | None]:
        """ss_output_name -> path; None marks an alias shared by several files
        (ambiguous). Reads every LoRA header once (then cached), so it is built only
        when a name misses."""
        if self._aliases is None:
            aliases: dict[str, str | None] = {}
            for path in self.lora_by_stem.values():
                alias = analyze_file(path, self.cache).output_name
                if alias and alias != _stem(path):
                    aliases[alias] = None if alias in aliases else path
            self._aliases = aliases
        return self._aliases

    def resolve_lora(self, name: str) -> PromptReference:
        self._ensure_fresh()
        path = self.lora_by_stem.get(name)
        problem = None
        if path is None:
            aliases = self._alias_map()
            if name in aliases:
                path = aliases[name]
                if path is None:
                    problem = f"several files use the alias {name!r}"
            else:
                problem = "not found"
        return self._checked(PromptReference("lora", name, path, problem))

    def embeddings_in(self, prompt: str) -> list[PromptReference]:
        self._ensure_fresh()
        if self._embedding_pattern is None:
            return []
        seen = []
        for match in self._embedding_pattern.finditer(strip_extra_networks(prompt)):
            stem = self._embedding_by_lower[match.group(1).lower()]
            if stem not in seen:
                seen.append(stem)
        return [self._checked(PromptReference("embedding", s, self.embedding_by_stem[s])) for s in seen]

    def resolve_prompt(self, prompt: str) -> list[PromptReference]:
        return [self.resolve_lora(n) for n in parse_lora_names(prompt)] + self.embeddings_in(prompt)

    def _checked(self, ref: PromptReference) -> PromptReference:
        if ref.path is not None and not is_under_roots(ref.path, self.allowed_roots):
            return PromptReference(
                ref.kind,
                ref.name,
                None,
                "outside the WebUI model folders; not inspected",
            )
        return ref


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def resolve_prompt_files(
    prompt: str,
    lora_dirs,
    embedding_dirs,
    allowed_roots=None,
    index: ModelIndex | None = None,
) -> list[PromptReference]:
    """One-shot form of ``ModelIndex(...).resolve_prompt(prompt)``; keep a ModelIndex
    for repeated calls (the panel)."""
    index = index or ModelIndex(lora_dirs, embedding_dirs, allowed_roots)
    return index.resolve_prompt(prompt)
