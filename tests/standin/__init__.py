"""A stand-in for the WebUI modules the extension touches, one tree per host.

``a1111/`` mirrors AUTOMATIC1111 stable-diffusion-webui v1.10.1 (82a973c04367123ae98bd9abdf80d9eda9b910e2);
``forge/`` mirrors lllyasviel/stable-diffusion-webui-forge main (dfdcbab685e57677014f05a3309b48cc87383167).
Both import shared behaviour from ``common/standin_common`` where the two hosts' code is the same.
Each file says which real module it mirrors.  The text encoders are real ``transformers``
models; sampling is replaced by a deterministic function of the conditioning, so a test can
tell which conditioning an image was made from.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTS = ("a1111", "forge")
_TOP_LEVEL = ("modules", "backend", "scripts", "standin_common", "ldm", "sgm", "open_clip")


def purge() -> None:
    """Forget every stand-in module, so the next import starts from a fresh host."""
    for name in list(sys.modules):
        if name.split(".")[0] in _TOP_LEVEL:
            del sys.modules[name]
    for host in (*HOSTS, "common"):
        path = str(HERE / host)
        while path in sys.path:
            sys.path.remove(path)


def use(host: str):
    """Put one host's stand-in on ``sys.path`` and return its ``modules.shared``."""
    if host not in HOSTS:
        raise ValueError(host)
    purge()
    sys.path.insert(0, str(HERE / "common"))
    sys.path.insert(0, str(HERE / host))
    return importlib.import_module("modules.shared")
