"""Forge dfdcbab6. Mirrors ``backend/memory_management.py`` ``load_model_gpu`` as far as weights go:
loading a patcher refreshes its LoRA patches into the model (``LoadedModel.model_load`` ->
``refresh_loras``, lines 456-518).  Devices are left out: everything stays on the CPU."""


def load_model_gpu(model):
    model.refresh_loras()
