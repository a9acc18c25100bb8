"""Forge dfdcbab6. Mirrors ``modules/sd_models.py``: the checkpoint list and ``CheckpointInfo``
(standin_common.sd_models), plus ``SdModelData.forge_loading_parameters`` (``:395-408``): a
selected checkpoint is only recorded there (``modules_forge/main_entry.py:229``
``refresh_model_loading_parameters``) and loaded by ``forge_model_reload`` (``:473``) at the
next generation."""
from standin_common.sd_models import *  # noqa: F401,F403
from standin_common.sd_models import CheckpointInfo, checkpoint_aliases, checkpoints_list  # noqa: F401


class FakeInitialModel:
    """``:385``: what ``shared.sd_model`` is from start-up until the first generation loads the checkpoint."""

    def __init__(self):
        self.cond_stage_model = None
        self.chunk_length = 75


class SdModelData:
    def __init__(self):
        self.sd_model = None  # the real one starts as FakeInitialModel(); tests set it where it matters
        self.forge_loading_parameters = {}
        self.forge_hash = ''


model_data = SdModelData()
