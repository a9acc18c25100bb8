import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS.parent), str(TESTS)]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(params=["a1111", "forge", "reforge", "neo"])
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
