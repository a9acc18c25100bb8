"""A1111-style parameters text (``prompt\\nNegative prompt: …\\nSteps: 20, …``) without a WebUI.

The same reading as the hosts' ``parse_generation_parameters`` (A1111 v1.10.1 82a973c0
``modules/infotext_utils.py:234-305``: the last line holds the parameters when ``re_param``
finds at least three pairs there; a quoted value is JSON; ``WxH`` becomes ``-1``/``-2``), minus
what only a WebUI needs (styles, the defaults it adds: a missing ``Clip skip`` stays missing).
"""

from __future__ import annotations

import json
import re

re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
re_imagesize = re.compile(r"^(\d+)x(\d+)$")

#: longer parameters than this are cut: no tool writes them, and the regex is linear but not free
MAX_TEXT = 1_000_000


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def parse(text: str) -> dict[str, str]:
    """Keys in the order written, then ``Prompt`` and ``Negative prompt``."""
    text = str(text)[:MAX_TEXT]
    *lines, last = text.strip().split("\n")
    if len(re_param.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[16:].strip()
        (negative if in_negative else prompt).append(line)
    result: dict[str, str] = {}
    for key, value in re_param.findall(last):
        value = unquote(value) if value[:1] == '"' else value
        size = re_imagesize.match(value)
        if size:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
        else:
            result[key] = value
    result["Prompt"] = "\n".join(prompt)
    result["Negative prompt"] = "\n".join(negative)
    return result
