"""A1111 v1.10.1. Mirrors ``modules/devices.py``: see standin_common.devices."""
from standin_common.devices import *  # noqa: F401,F403
