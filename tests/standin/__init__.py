"""A stand-in for the WebUI modules the extension touches, one tree per host.

``a1111/`` mirrors AUTOMATIC1111 stable-diffusion-webui v1.10.1 (82a973c04367123ae98bd9abdf80d9eda9b910e2);
``forge/`` mirrors lllyasviel/stable-diffusion-webui-forge main (dfdcbab685e57677014f05a3309b48cc87383167);
``reforge/`` mirrors Panchovix/stable-diffusion-webui-reForge main (3b56b268ad9158ee8b30900973b6ccda4ec22241)
where it differs from A1111 v1.10.1 and uses the ``a1111/`` tree for the rest; ``neo/`` mirrors Forge Neo
(Haoming02's lineage; the copy papaioannou-themistoklis/WebUI-Neo-Forge 7862a96) where it differs from
Forge and uses the ``forge/`` tree for the rest; ``classic/`` mirrors Forge Classic's encoders
(Haoming02/sd-webui-forge-classic 1f95d717) on the ``a1111/`` tree.
All import shared behaviour from ``common/standin_common`` where the hosts' code is the same.
Each file says which real module it mirrors.  The text encoders are real ``transformers``
models; sampling is replaced by a deterministic function of the conditioning, so a test can
tell which conditioning an image was made from.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTS = ("a1111", "forge", "reforge", "neo", "classic")
#: the trees a host's stand-in is made of, searched in this order (then ``common``)
LAYERS = {"a1111": ("a1111",), "forge": ("forge",), "reforge": ("reforge", "a1111"), "neo": ("neo", "forge"), "classic": ("classic", "a1111")}
_TOP_LEVEL = ("modules", "modules_forge", "backend", "scripts", "standin_common", "ldm", "sgm", "open_clip")


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
    for tree in reversed(LAYERS[host]):
        sys.path.insert(0, str(HERE / tree))
    return importlib.import_module("modules.shared")
