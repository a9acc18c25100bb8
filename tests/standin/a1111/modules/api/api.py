"""A1111 v1.10.1. Mirrors ``modules/api/api.py``: see standin_common.api."""
from standin_common.api import Api, Request  # noqa: F401
