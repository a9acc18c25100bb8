"""A1111 v1.10.1. Mirrors ``modules/sd_models.py`` (checkpoint list and ``CheckpointInfo``): see
standin_common.sd_models.  A selected checkpoint is loaded at once (``reload_model_weights``), so
the loaded model's ``sd_checkpoint_info`` (``:529``) is the selection."""
from standin_common.sd_models import *  # noqa: F401,F403
from standin_common.sd_models import CheckpointInfo, checkpoint_aliases, checkpoints_list  # noqa: F401
