"""A1111 v1.10.1. Mirrors ``modules/processing.py``: see standin_common.processing (written from this host)."""
from standin_common.processing import *  # noqa: F401,F403
from standin_common.processing import (  # noqa: F401
    Processed,
    StableDiffusionProcessing,
    StableDiffusionProcessingImg2Img,
    StableDiffusionProcessingTxt2Img,
    create_infotext,
    fix_seed,
    process_images,
)
