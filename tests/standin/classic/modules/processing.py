"""Forge Classic 1f95d717. Mirrors ``modules/processing.py`` as A1111 v1.10.1's (see standin_common.processing),
except ``Processed.js`` (``:616``): a bare ``json.dumps(obj)``, without A1111's ``default=lambda o: None``."""
from standin_common import processing as common
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

common.JS_DEFAULT = None
