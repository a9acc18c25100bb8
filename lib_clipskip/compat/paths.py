"""Folder walking and the check that a file lies under one of the allowed model folders."""

from __future__ import annotations

import os

from .analysis import MODEL_EXTS


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


def is_preview_image(path: str) -> bool:
    return ".preview." in os.path.basename(path).lower()


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
            if lower.endswith(extensions) and not is_preview_image(lower):
                found.append(os.path.join(dirpath, name))
    return sorted(found)
