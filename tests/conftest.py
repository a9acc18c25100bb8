import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS.parent), str(TESTS)]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _transformers_major() -> int:
    from importlib.metadata import version

    return int(version("transformers").split(".")[0])


#: every host stand-in; reForge's ``forge_clip`` reads ``transformer.text_model`` (as the real one does), which
#: transformers 5 flattened away, and reForge pins 4.48.1: it is left out of the newest-libraries run
HOSTS = [host for host in ("a1111", "forge", "reforge", "neo") if host != "reforge" or _transformers_major() < 5]


@pytest.fixture(params=HOSTS)
def webui(request):
    from webui import WebUI

    ui = WebUI(request.param)
    yield ui
    ui.close()


@pytest.fixture
def a1111():
    from webui import WebUI

    ui = WebUI("a1111")
    yield ui
    ui.close()


@pytest.fixture
def forge():
    from webui import WebUI

    ui = WebUI("forge")
    yield ui
    ui.close()
