"""Mirrors ``scripts/prompts_from_file.py`` (A1111 v1.10.1 82a973c0; Forge dfdcbab6 the same): each
line is its own ``process_images(copy.copy(p))``, ``--prompt``/``--negative_prompt`` and the other
``--`` options set on that copy (``cmdargs``, lines 63-100; ``run``, 130-196).  Left out: the file
upload, ``sd_model`` and ``sampler_name`` options, ``state`` job counting."""

import copy
import shlex

import gradio as gr
from modules import scripts
from modules.processing import Processed, process_images

prompt_tags = {"prompt": str, "negative_prompt": str, "seed": int, "steps": int, "cfg_scale": float,
               "batch_size": int, "n_iter": int, "width": int, "height": int, "styles": str}


def cmdargs(line):
    args = shlex.split(line)
    pos = 0
    res = {}
    while pos < len(args):
        arg = args[pos]
        assert arg.startswith("--"), f'must start with "--": {arg}'
        assert pos + 1 < len(args), f"missing argument for command line option {arg}"
        tag = arg[2:]
        if tag in ("prompt", "negative_prompt"):
            pos += 1
            prompt = args[pos]
            pos += 1
            while pos < len(args) and not args[pos].startswith("--"):
                prompt += " " + args[pos]
                pos += 1
            res[tag] = prompt
            continue
        func = prompt_tags.get(tag)
        assert func, f"unknown commandline option: {arg}"
        res[tag] = func(args[pos + 1])
        pos += 2
    return res


class Script(scripts.Script):
    def title(self):
        return "Prompts from file or textbox"

    def ui(self, is_img2img):
        return [gr.Checkbox(label="Iterate seed every line", value=False),
                gr.Checkbox(label="Use same random seed for all lines", value=False),
                gr.Radio(["start", "end"], label="Insert prompts at the", value="start"),
                gr.Textbox(label="List of prompt inputs", lines=1)]

    def run(self, p, checkbox_iterate, checkbox_iterate_batch, prompt_position, prompt_txt):
        lines = [x for x in (x.strip() for x in prompt_txt.splitlines()) if x]
        p.do_not_save_grid = True
        jobs = [cmdargs(line) if "--" in line else {"prompt": line} for line in lines]
        images, all_prompts, infotexts = [], [], []
        for args in jobs:
            copy_p = copy.copy(p)
            for k, v in args.items():
                setattr(copy_p, k, v)
            if args.get("prompt") and p.prompt:
                copy_p.prompt = (args["prompt"] + " " + p.prompt) if prompt_position == "start" else (p.prompt + " " + args["prompt"])
            if args.get("negative_prompt") and p.negative_prompt:
                copy_p.negative_prompt = (args["negative_prompt"] + " " + p.negative_prompt) if prompt_position == "start" \
                    else (p.negative_prompt + " " + args["negative_prompt"])
            proc = process_images(copy_p)
            images += proc.images
            if checkbox_iterate:
                p.seed = p.seed + (p.batch_size * p.n_iter)
            all_prompts += proc.all_prompts
            infotexts += proc.infotexts
        return Processed(p, images, p.seed, "", all_prompts=all_prompts, infotexts=infotexts)
