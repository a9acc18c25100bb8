"""Folder walking and the check that a file lies under one of the allowed model folders."""

from __future__ import annotations

import os
import re

from .analysis import IMAGE_EXTS, MODEL_EXTS
from .images import is_preview_name

_DIGITS = re.compile(r"([0-9]+)")


def is_under_roots(path: str, roots) -> bool:
    """True when ``path`` is inside one of ``roots``.

    Both sides are made absolute and normalised, so '..' cannot climb out. Symlinks are
    not resolved: a model folder that links to another drive is still the WebUI's model
    folder."""
    target = os.path.normcase(os.path.abspath(path))
    for root in roots:
        root = os.path.normcase(os.path.abspath(os.fspath(root)))
        try:
            if os.path.commonpath([target, root]) == root and target != root:
                return True
        except ValueError:  # different drives on Windows
            continue
    return False


def walk_model_files(folder: str, extensions=MODEL_EXTS):
    """Model files under ``folder``, recursively, sorted, following links once (no
    cycles)."""
    seen_dirs = set()
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for name in filenames:
            lower = name.lower()
            if lower.endswith(extensions) and not (lower.endswith(IMAGE_EXTS) and is_preview_name(lower)):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def natural_key(text: str) -> list:
    """'lora2' before 'lora10', case-insensitive: the order A1111's walk_files sorts by
    (modules/util.py natural_sort_key)."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text)]


def host_lora_files(folders, extensions) -> list[str]:
    """LoRA files in the order the hosts list them (networks.py:650 via util.walk_files):
    folders in the given order, directories by natural order of their path, files by
    natural order of their name. Later files with the same stem win there."""
    found = []
    for folder in folders:
        walked = list(_walk_once(folder))
        walked.sort(key=lambda item: natural_key(item[0]))
        for dirpath, filenames in walked:
            found += [os.path.join(dirpath, name) for name in sorted(filenames, key=natural_key)
                      if os.path.splitext(name)[1].lower() in extensions]
    return found


def host_embedding_files(folders, extensions) -> list[str]:
    """Embedding candidates in the order the hosts load them (textual_inversion.py:195,
    plain os.walk order); empty files are skipped as the hosts skip them."""
    found = []
    for folder in folders:
        for dirpath, filenames in _walk_once(folder):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.splitext(name)[1].lower() in extensions and _size(path) > 0:
                    found.append(path)
    return found


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _walk_once(folder):
    """os.walk following links, each real directory once (a link loop would not end)."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        yield dirpath, filenames
