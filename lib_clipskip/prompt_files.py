"""The LoRAs and embeddings a prompt names, as the running WebUI resolves them, and their reports.

One place for the panel's list and the console's warnings: the folders each host's loaders read
(``HostAdapter.lora_folders``), one ``compat.ModelIndex`` per set of folders, and
``compat.check_files`` at the values a generation uses.  Only files under the WebUI's own model
folders are read.
"""

from __future__ import annotations

from typing import Any

from lib_clipskip.values import Family

#: the compatibility checker's family names
COMPAT_FAMILIES = {Family.SD1: "sd1", Family.SD2: "sd2", Family.SDXL: "sdxl", Family.SDXL_REFINER: "sdxl"}


def model_folders(shared: Any, adapter: Any) -> tuple[list[str], list[str], list[str]]:
    """(LoRA folders the host reads, embedding folders, folders the UI may inspect) of the running WebUI."""
    import os

    cmd_opts = getattr(shared, "cmd_opts", None)
    lora = [os.fspath(d) for d in adapter.lora_folders(cmd_opts) if d]
    embeddings = [os.fspath(d) for d in [getattr(cmd_opts, "embeddings_dir", None)] if d]
    models_path = getattr(shared, "models_path", None)
    roots = ([os.fspath(models_path)] if models_path else []) + lora + embeddings
    return lora, embeddings, roots


_indexes: dict[tuple, Any] = {}


def model_index(lora_dirs: list[str], embedding_dirs: list[str], roots: list[str]) -> Any:
    """One ``compat.ModelIndex`` per set of folders (listings re-walked every few seconds)."""
    from lib_clipskip.compat import ModelIndex

    key = (tuple(lora_dirs), tuple(embedding_dirs), tuple(roots))
    index = _indexes.get(key)
    if index is None:
        index = _indexes[key] = ModelIndex(lora_dirs, embedding_dirs, allowed_roots=roots)
    return index


#: how long a panel refresh waits for a folder's names (aliases, image embeddings) to be read after a
#: start or a new file; the generation path never waits (compat.ModelIndex.resolve_prompt)
PANEL_NAME_WAIT = 0.3


def reports(prompt: str, compat_family: str | None, clip_skip: float | None, clip_skip_g: float | None,
            shared: Any, adapter: Any, wait: float = 0.0) -> list[Any]:
    """``(PromptReference, FileReport | None)`` for every LoRA / embedding of ``prompt``, in prompt
    order, with warnings at the given values (``None`` report: the file was not found)."""
    from lib_clipskip.compat import check_files

    lora_dirs, embedding_dirs, roots = model_folders(shared, adapter)
    if not (lora_dirs or embedding_dirs):
        return []
    references = model_index(lora_dirs, embedding_dirs, roots).resolve_prompt(prompt, wait=wait)
    paths = [ref.path for ref in references if ref.path]
    found = iter(check_files(paths, compat_family, clip_skip, clip_skip_g, host=adapter.name, allowed_roots=roots))
    return [(ref, next(found) if ref.path else None) for ref in references]
