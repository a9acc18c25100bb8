"""Mirrors ``modules/devices.py`` (A1111 v1.10.1; Forge dfdcbab6 the same for these): CPU only, autocast is a no-op as with --no-half on CPU."""
import contextlib

import torch

device = torch.device("cpu")
dtype = torch.float32


def autocast(disable=False):
    return contextlib.nullcontext()


def without_autocast(disable=False):
    return contextlib.nullcontext()


def torch_npu_set_device():
    pass


def torch_gc():
    pass
