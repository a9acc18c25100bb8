"""A1111 v1.10.1. Mirrors ``modules/extra_networks.py``: see standin_common.extra_networks."""
from standin_common.extra_networks import *  # noqa: F401,F403
from standin_common.extra_networks import displayed_errors, extra_network_registry  # noqa: F401
