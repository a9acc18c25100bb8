"""Mirrors what both hosts' ``modules/sd_models.py`` offer about checkpoint files (A1111 v1.10.1
``:24-25``, ``:56-105``; Forge dfdcbab6 ``:30-31`` and the same ``CheckpointInfo``): the list, the
aliases ``process_images`` looks an ``sd_model_checkpoint`` override up in, and a ``CheckpointInfo``
with the real ``filename`` / ``name`` / ``name_for_extra`` / ``title`` / ``ids``.  Hashes (no
``--no-hashing`` here: the real ones are read from the hash cache; None until calculated) and
the safetensors ``metadata`` the host caches for its card are left out: the extension reads
neither."""

from __future__ import annotations

import os

checkpoints_list = {}
checkpoint_aliases = {}


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"
        name = os.path.basename(filename)
        self.name = name
        self.name_for_extra = os.path.splitext(os.path.basename(filename))[0]
        self.model_name = os.path.splitext(name.replace("/", "_").replace("\\", "_"))[0]
        self.hash = None
        self.sha256 = self.shorthash = None
        self.title = name
        self.short_title = self.name_for_extra
        self.ids = [self.model_name, self.title, name, self.name_for_extra]
        self.metadata = {}

    def register(self):
        checkpoints_list[self.title] = self
        for alias in self.ids:
            checkpoint_aliases[alias] = self

    def __repr__(self):
        return f"CheckpointInfo({self.filename!r})"
