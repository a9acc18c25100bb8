"""Mirrors ``modules/prompt_parser.py`` (A1111 v1.10.1; Forge dfdcbab6 keeps the same module).

Kept: ``parse_prompt_attention`` (emphasis weights and BREAK), ``SdConditioning``,
``get_learned_conditioning`` (one encode per distinct prompt, a batch of schedule texts per
call), AND / ``:weight`` splitting in ``get_multicond_learned_conditioning``.
Simplified: the prompt-editing scheduler handles the non-nested ``[from:to:when]``,
``[to:when]`` and ``[from::when]`` forms with a regex instead of the real lark grammar.
"""

from __future__ import annotations

import re
from collections import namedtuple

re_attention = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""", re.X)
re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)
re_schedule = re.compile(r"\[([^\[\]:]*):([^\[\]:]*):\s*([0-9.]+)\s*\]|\[([^\[\]:]*):\s*([0-9.]+)\s*\]")

ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])


def parse_prompt_attention(text):
    """``[[text, weight], ...]``; ``["BREAK", -1]`` marks a forced chunk break."""
    res = []
    round_brackets = []
    square_brackets = []

    def multiply_range(start, multiplier):
        for index in range(start, len(res)):
            res[index][1] *= multiplier

    for match in re_attention.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            res.append([piece[1:], 1.0])
        elif piece == "(":
            round_brackets.append(len(res))
        elif piece == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif piece == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif piece == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for index, part in enumerate(re.split(re_break, piece)):
                if index > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for start in round_brackets:
        multiply_range(start, 1.1)
    for start in square_brackets:
        multiply_range(start, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    index = 0
    while index + 1 < len(res):  # merge runs of equal weight
        if res[index][1] == res[index + 1][1]:
            res[index][0] += res[index + 1][0]
            res.pop(index + 1)
        else:
            index += 1
    return res


def _schedule_one(prompt, steps):
    edits = []
    for match in re_schedule.finditer(prompt):
        when = float(match.group(3) or match.group(5))
        edits.append(int(when * steps) if when < 1 else int(when))
    boundaries = sorted({e for e in edits if 0 < e < steps}) + [steps]

    def text_at(step):
        def replace(match):
            if match.group(3) is not None:
                before, after, when = match.group(1), match.group(2), float(match.group(3))
            else:
                before, after, when = "", match.group(4), float(match.group(5))
            end = int(when * steps) if when < 1 else int(when)
            return before if step <= end else after
        return re_schedule.sub(replace, prompt)

    return [[end, text_at(end)] for end in boundaries]


def get_learned_conditioning_prompt_schedules(prompts, base_steps, hires_steps=None, use_old_scheduling=False):
    steps = hires_steps if hires_steps is not None and not use_old_scheduling else base_steps
    return [_schedule_one(prompt, steps) for prompt in prompts]


class SdConditioning(list):
    def __init__(self, prompts, is_negative_prompt=False, width=None, height=None, copy_from=None, distilled_cfg_scale=None):
        super().__init__()
        self.extend(prompts)
        if copy_from is None:
            copy_from = prompts
        self.is_negative_prompt = is_negative_prompt or getattr(copy_from, "is_negative_prompt", False)
        self.width = width or getattr(copy_from, "width", None)
        self.height = height or getattr(copy_from, "height", None)
        self.distilled_cfg_scale = distilled_cfg_scale or getattr(copy_from, "distilled_cfg_scale", None)


def get_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False):
    res = []
    schedules = get_learned_conditioning_prompt_schedules(prompts, steps, hires_steps, use_old_scheduling)
    cache = {}
    for prompt, schedule in zip(prompts, schedules):
        if prompt in cache:
            res.append(cache[prompt])
            continue
        texts = SdConditioning([text for _, text in schedule], copy_from=prompts)
        conds = model.get_learned_conditioning(texts)
        cond_schedule = []
        for index, (end_at_step, _) in enumerate(schedule):
            cond = {k: v[index] for k, v in conds.items()} if isinstance(conds, dict) else conds[index]
            cond_schedule.append(ScheduledPromptConditioning(end_at_step, cond))
        cache[prompt] = cond_schedule
        res.append(cond_schedule)
    return res


re_AND = re.compile(r"\bAND\b")
re_weight = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules = schedules
        self.weight = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape = shape
        self.batch = batch


def get_multicond_prompt_list(prompts):
    res_indexes = []
    prompt_indexes = {}
    flat = SdConditioning(prompts)
    flat.clear()
    for prompt in prompts:
        indexes = []
        for subprompt in re_AND.split(prompt):
            match = re_weight.search(subprompt)
            text, weight = match.groups() if match is not None else (subprompt, 1.0)
            weight = float(weight) if weight is not None else 1.0
            index = prompt_indexes.get(text)
            if index is None:
                index = len(flat)
                flat.append(text)
                prompt_indexes[text] = index
            indexes.append((index, weight))
        res_indexes.append(indexes)
    return res_indexes, flat, prompt_indexes


def get_multicond_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False):
    res_indexes, flat, _ = get_multicond_prompt_list(prompts)
    learned = get_learned_conditioning(model, flat, steps, hires_steps, use_old_scheduling)
    batch = [[ComposableScheduledPromptConditioning(learned[i], weight) for i, weight in indexes] for indexes in res_indexes]
    return MulticondLearnedConditioning(shape=(len(prompts),), batch=batch)


def first_cond(conds):
    """The first scheduled conditioning of either result type (a test helper, not in the hosts)."""
    if isinstance(conds, MulticondLearnedConditioning):
        return conds.batch[0][0].schedules[0].cond
    return conds[0][0].cond


class DictWithShape(dict):
    """``prompt_parser.DictWithShape`` (A1111 v1.10.1 ``modules/prompt_parser.py:270``; Forge the same)."""

    def __init__(self, x, shape=None):
        super().__init__()
        self.update(x)

    @property
    def shape(self):
        return self["crossattn"].shape


def reconstruct_cond_batch(c, current_step):
    """A1111 ``prompt_parser.py:280``: each prompt's schedule entry for this step, stacked."""
    import torch

    param = c[0][0].cond
    is_dict = isinstance(param, dict)
    if is_dict:
        dict_cond = param
        res = {k: torch.zeros((len(c),) + param.shape, device=param.device, dtype=param.dtype) for k, param in dict_cond.items()}
        res = DictWithShape(res, (len(c),) + dict_cond["crossattn"].shape)
    else:
        res = torch.zeros((len(c),) + param.shape, device=param.device, dtype=param.dtype)
    for i, cond_schedule in enumerate(c):
        target_index = 0
        for current, entry in enumerate(cond_schedule):
            if current_step <= entry.end_at_step:
                target_index = current
                break
        if is_dict:
            for k, param in cond_schedule[target_index].cond.items():
                res[k][i] = param
        else:
            res[i] = cond_schedule[target_index].cond
    return res


def stack_conds(tensors):
    """A1111 ``prompt_parser.py:307``."""
    import torch

    token_count = max([x.shape[0] for x in tensors])
    for i in range(len(tensors)):
        if tensors[i].shape[0] != token_count:
            last_vector = tensors[i][-1:]
            last_vector_repeated = last_vector.repeat([token_count - tensors[i].shape[0], 1])
            tensors[i] = torch.vstack([tensors[i], last_vector_repeated])
    return torch.stack(tensors)


def reconstruct_multicond_batch(c, current_step):
    """A1111 ``prompt_parser.py:321``: ``(conds_list, stacked tensor)`` for this step."""
    param = c.batch[0][0].schedules[0].cond
    tensors = []
    conds_list = []
    for composable_prompts in c.batch:
        conds_for_batch = []
        for composable_prompt in composable_prompts:
            target_index = 0
            for current, entry in enumerate(composable_prompt.schedules):
                if current_step <= entry.end_at_step:
                    target_index = current
                    break
            conds_for_batch.append((len(tensors), composable_prompt.weight))
            tensors.append(composable_prompt.schedules[target_index].cond)
        conds_list.append(conds_for_batch)
    if isinstance(tensors[0], dict):
        keys = list(tensors[0].keys())
        stacked = {k: stack_conds([x[k] for x in tensors]) for k in keys}
        stacked = DictWithShape(stacked, stacked["crossattn"].shape)
    else:
        stacked = stack_conds(tensors).to(device=param.device, dtype=param.dtype)
    return conds_list, stacked
