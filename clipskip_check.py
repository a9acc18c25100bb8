"""Check LoRAs and embeddings against clip skip from the WebUI folder (or anywhere):

    python extensions/sd-webui-clipskip/clipskip_check.py [options] [PATH...]

The same as ``python -m lib_clipskip check``, which Python finds only in this extension's folder.
``--help`` lists the options.  Needs numpy only (every WebUI's own venv has it).
"""

import os
import sys

from lib_clipskip.__main__ import main  # Python puts this script's folder first on sys.path

if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(["check", *argv[argv[:1] == ["check"]:]], prog="python " + os.path.basename(__file__)))
