"""The shared body of the ``scripts/xyz_grid.py`` stand-ins (A1111 v1.10.1 82a973c0, Forge dfdcbab6).

The two hosts' files differ only in Forge's extra "Distilled CFG Scale" axis and its checkpoint
reload helper (not mirrored: no checkpoint axis here).  Each host's ``scripts/xyz_grid.py`` is
loaded by the harness like the host loads it (``script_loading.load_module``: module name
``"xyz_grid.py"``, not in ``sys.modules``), builds its own ``axis_options`` list from
``default_axis_options()`` and defines ``Script`` on top of ``XYZGridScript`` here.

Kept as the host has them: ``AxisOption`` (label, type, apply, format_value, confirm, cost,
choices, prepare), ``AxisOptionTxt2Img``/``AxisOptionImg2Img``, ``apply_field``,
``apply_override``, ``apply_prompt``, ``format_value_add_label``, the range syntax of int and
float axes, ``Script.ui`` freezing ``current_axis_options`` (dropdowns of ``type="index"``),
``Script.run``'s signature and steps: ``fix_seed`` once unless "Keep -1 for seeds",
``fix_axis_seeds``, ``process_axis`` (prepare → ranges → ``type`` → ``confirm``), labels from
``format_value`` before any cell runs, cost ordering, the cell loop (``pc = copy(p)`` shallow,
``pc.styles`` copied, x/y/z ``apply``, ``vary_seeds_*``, ``process_images(pc)``, only
``images[0]`` / ``infotexts[0]`` kept, an exception costs one cell), grid infotexts built from
the first cell's ``pc`` with "Script", "X Type", "X Values", "Fixed X Values", … and
``SharedSettingsStackHelper`` (which restores nothing).

Replaced: PIL grids.  A grid "image" is a ``Grid`` holding the cell images and the labels.
"""

from __future__ import annotations

import csv
import random
import re
from collections import namedtuple
from copy import copy
from io import StringIO
from itertools import chain, permutations

import numpy as np

AxisInfo = namedtuple("AxisInfo", ["axis", "values"])
Grid = namedtuple("Grid", ["images", "x_labels", "y_labels", "z_labels"])


def host():
    from modules import processing, scripts, shared

    return processing, scripts, shared


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


def apply_override(field, boolean: bool = False):
    def fun(p, x, xs):
        if boolean:
            x = True if x.lower() == "true" else False
        p.override_settings[field] = x

    return fun


def apply_prompt(p, x, xs):
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise RuntimeError(f"Prompt S/R did not find {xs[0]} in prompt or negative prompt.")
    p.prompt = p.prompt.replace(xs[0], x)
    p.negative_prompt = p.negative_prompt.replace(xs[0], x)


def do_nothing(p, x, xs):
    pass


def format_value_add_label(p, opt, x):
    if isinstance(x, float):
        x = round(x, 8)
    return f"{opt.label}: {x}"


def format_value(p, opt, x):
    if isinstance(x, float):
        x = round(x, 8)
    return x


def format_nothing(p, opt, x):
    return ""


def str_permutations(x):
    return x


def confirm_range(min_val, max_val, axis_label):
    def confirm_range_fun(p, xs):
        for x in xs:
            if not (max_val >= x >= min_val):
                raise ValueError(f'{axis_label} value "{x}" out of range [{min_val}, {max_val}]')

    return confirm_range_fun


def list_to_csv_string(data_list):
    with StringIO() as o:
        csv.writer(o).writerow(data_list)
        return o.getvalue().strip()


def csv_string_to_list_strip(data_str):
    return list(map(str.strip, chain.from_iterable(csv.reader(StringIO(data_str), skipinitialspace=True))))


class AxisOption:
    def __init__(self, label, type, apply, format_value=format_value_add_label, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


class AxisOptionImg2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = True


class AxisOptionTxt2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = False


def default_axis_options():
    """The built-in axes this stand-in keeps, in the host's order (a fresh list per module load)."""
    return [
        AxisOption("Nothing", str, do_nothing, format_value=format_nothing),
        AxisOption("Seed", int, apply_field("seed")),
        AxisOption("Var. seed", int, apply_field("subseed")),
        AxisOption("Var. strength", float, apply_field("subseed_strength")),
        AxisOption("Steps", int, apply_field("steps")),
        AxisOptionTxt2Img("Hires steps", int, apply_field("hr_second_pass_steps")),
        AxisOption("CFG Scale", float, apply_field("cfg_scale")),
        AxisOptionImg2Img("Image CFG Scale", float, apply_field("image_cfg_scale")),
        AxisOption("Prompt S/R", str, apply_prompt, format_value=format_value),
        AxisOption("Clip skip", int, apply_override("CLIP_stop_at_last_layers")),
        AxisOption("Denoising", float, apply_field("denoising_strength")),
    ]


class SharedSettingsStackHelper:
    def __enter__(self):
        pass

    def __exit__(self, exc_type, exc_value, tb):
        pass  # the host reloads model and VAE weights here; it restores no option


re_range = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*")
re_range_float = re.compile(r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\(([+-]\d+(?:.\d*)?)\s*\))?\s*")
re_range_count = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*])?\s*")
re_range_count_float = re.compile(r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\[(\d+(?:.\d*)?)\s*])?\s*")


def expand_int(valslist):
    out = []
    for val in valslist:
        if val.strip() == "":
            continue
        m = re_range.fullmatch(val)
        mc = re_range_count.fullmatch(val)
        if m is not None:
            step = int(m.group(3)) if m.group(3) is not None else 1
            out += list(range(int(m.group(1)), int(m.group(2)) + 1, step))
        elif mc is not None:
            num = int(mc.group(3)) if mc.group(3) is not None else 1
            out += [int(x) for x in np.linspace(start=int(mc.group(1)), stop=int(mc.group(2)), num=num).tolist()]
        else:
            out.append(val)
    return out


def expand_float(valslist):
    out = []
    for val in valslist:
        if val.strip() == "":
            continue
        m = re_range_float.fullmatch(val)
        mc = re_range_count_float.fullmatch(val)
        if m is not None:
            start, end = float(m.group(1)), float(m.group(2))
            step = float(m.group(3)) if m.group(3) is not None else 1
            out += np.arange(start, end + step, step).tolist()
        elif mc is not None:
            num = int(mc.group(3)) if mc.group(3) is not None else 1
            out += np.linspace(start=float(mc.group(1)), stop=float(mc.group(2)), num=num).tolist()
        else:
            out.append(val)
    return out


def draw_xyz_grid(p, xs, ys, zs, x_labels, y_labels, z_labels, cell, first_axes_processed, second_axes_processed):
    """The host's loop order and result layout: [grid(s)…, cells…] with infotexts aligned the same way."""
    processing, _, shared = host()
    list_size = len(xs) * len(ys) * len(zs)
    result = None
    shared.state.job_count = list_size * p.n_iter

    def index(ix, iy, iz):
        return ix + iy * len(xs) + iz * len(xs) * len(ys)

    def process_cell(x, y, z, ix, iy, iz):
        nonlocal result
        shared.state.job = f"{index(ix, iy, iz) + 1} out of {list_size}"
        processed = cell(x, y, z, ix, iy, iz)
        if result is None:
            result = copy(processed)
            result.images = [None] * list_size
            result.all_prompts = [None] * list_size
            result.all_seeds = [None] * list_size
            result.infotexts = [None] * list_size
            result.index_of_first_image = 1
        idx = index(ix, iy, iz)
        if processed.images:
            result.images[idx] = processed.images[0]
            result.all_prompts[idx] = processed.prompt
            result.all_seeds[idx] = processed.seed
            result.infotexts[idx] = processed.infotexts[0]

    axes = {"x": list(enumerate(xs)), "y": list(enumerate(ys)), "z": list(enumerate(zs))}
    third = ({"x", "y", "z"} - {first_axes_processed, second_axes_processed}).pop()
    for i1, v1 in axes[first_axes_processed]:
        for i2, v2 in axes[second_axes_processed]:
            for i3, v3 in axes[third]:
                found = {first_axes_processed: (i1, v1), second_axes_processed: (i2, v2), third: (i3, v3)}
                (ix, x), (iy, y), (iz, z) = found["x"], found["y"], found["z"]
                process_cell(x, y, z, ix, iy, iz)

    if not result or not any(image is not None for image in result.images):
        return processing.Processed(p, [])

    for i in range(len(zs)):
        start = i * len(xs) * len(ys) + i
        end = start + len(xs) * len(ys)
        result.images.insert(i, Grid(result.images[start:end], x_labels, y_labels, [z_labels[i]]))
        result.all_prompts.insert(i, result.all_prompts[start])
        result.all_seeds.insert(i, result.all_seeds[start])
        result.infotexts.insert(i, result.infotexts[start])
    result.images.insert(0, Grid(result.images[:len(zs)], x_labels, y_labels, z_labels))
    result.infotexts.insert(0, result.infotexts[0])
    return result


class XYZGridScript:
    """The body of ``Script`` in ``scripts/xyz_grid.py``; the host file mixes it into ``scripts.Script``.

    ``axis_options`` is the loaded module's own list (the one extensions append to).
    """

    axis_options: list = []

    def title(self):
        return "X/Y/Z plot"

    def ui(self, is_img2img):
        import gradio as gr

        self.current_axis_options = [x for x in self.axis_options if type(x) == AxisOption or x.is_img2img == is_img2img]  # noqa: E721
        labels = [x.label for x in self.current_axis_options]
        controls = []
        for axis, default in (("x", 1), ("y", 0), ("z", 0)):
            controls.append(gr.Dropdown(label=f"{axis.upper()} type", choices=labels, value=labels[default], type="index", elem_id=self.elem_id(f"{axis}_type")))
            controls.append(gr.Textbox(label=f"{axis.upper()} values", lines=1, elem_id=self.elem_id(f"{axis}_values")))
            controls.append(gr.Dropdown(label=f"{axis.upper()} values", visible=False, multiselect=True, interactive=True))
        controls.append(gr.Checkbox(label="Draw legend", value=True, elem_id=self.elem_id("draw_legend")))
        controls.append(gr.Checkbox(label="Include Sub Images", value=False, elem_id=self.elem_id("include_lone_images")))
        controls.append(gr.Checkbox(label="Include Sub Grids", value=False, elem_id=self.elem_id("include_sub_grids")))
        controls.append(gr.Checkbox(label="Keep -1 for seeds", value=False, elem_id=self.elem_id("no_fixed_seeds")))
        for axis in "xyz":
            controls.append(gr.Checkbox(label=f"Vary seeds for {axis.upper()}", value=False, elem_id=self.elem_id(f"vary_seeds_{axis}")))
        controls.append(gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2, elem_id=self.elem_id("margin_size")))
        controls.append(gr.Checkbox(label="Use text inputs instead of dropdowns", value=False, elem_id=self.elem_id("csv_mode")))
        self.infotext_fields = tuple(
            (controls[axis * 3 + offset], f"{'XYZ'[axis]} {what}") for axis in range(3) for offset, what in ((0, "Type"), (1, "Values")))
        return controls

    def run(self, p, x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown,
            draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds, vary_seeds_x, vary_seeds_y, vary_seeds_z, margin_size, csv_mode):
        processing, _, shared = host()
        opts, state = shared.opts, shared.state
        x_type, y_type, z_type = x_type or 0, y_type or 0, z_type or 0

        if not no_fixed_seeds:
            processing.fix_seed(p)

        if not opts.return_grid:
            p.batch_size = 1

        def process_axis(opt, vals, vals_dropdown):
            if opt.label == "Nothing":
                return [0]
            if opt.choices is not None and not csv_mode:
                valslist = vals_dropdown
            elif opt.prepare is not None:
                valslist = opt.prepare(vals)
            else:
                valslist = csv_string_to_list_strip(vals)
            if opt.type == int:  # noqa: E721  (the host compares types this way)
                valslist = expand_int(valslist)
            elif opt.type == float:  # noqa: E721
                valslist = expand_float(valslist)
            elif opt.type == str_permutations:
                valslist = list(permutations(valslist))
            valslist = [opt.type(x) for x in valslist]
            if opt.confirm:
                opt.confirm(p, valslist)
            return valslist

        x_opt = self.current_axis_options[x_type]
        if x_opt.choices is not None and not csv_mode:
            x_values = list_to_csv_string(x_values_dropdown)
        xs = process_axis(x_opt, x_values, x_values_dropdown)

        y_opt = self.current_axis_options[y_type]
        if y_opt.choices is not None and not csv_mode:
            y_values = list_to_csv_string(y_values_dropdown)
        ys = process_axis(y_opt, y_values, y_values_dropdown)

        z_opt = self.current_axis_options[z_type]
        if z_opt.choices is not None and not csv_mode:
            z_values = list_to_csv_string(z_values_dropdown)
        zs = process_axis(z_opt, z_values, z_values_dropdown)

        def fix_axis_seeds(axis_opt, axis_list):
            if axis_opt.label in ["Seed", "Var. seed"]:
                return [int(random.randrange(4294967294)) if val is None or val == "" or val == -1 else val for val in axis_list]
            return axis_list

        if not no_fixed_seeds:
            xs = fix_axis_seeds(x_opt, xs)
            ys = fix_axis_seeds(y_opt, ys)
            zs = fix_axis_seeds(z_opt, zs)

        print(f"X/Y/Z plot will create {len(xs) * len(ys) * len(zs) * p.n_iter * p.batch_size} images on {len(zs)} {len(xs)}x{len(ys)} grid"
              f"{'s' if len(zs) > 1 else ''}.")
        state.xyz_plot_x = AxisInfo(x_opt, xs)
        state.xyz_plot_y = AxisInfo(y_opt, ys)
        state.xyz_plot_z = AxisInfo(z_opt, zs)

        first_axes_processed, second_axes_processed = "z", "y"
        if x_opt.cost > y_opt.cost and x_opt.cost > z_opt.cost:
            first_axes_processed = "x"
            second_axes_processed = "y" if y_opt.cost > z_opt.cost else "z"
        elif y_opt.cost > x_opt.cost and y_opt.cost > z_opt.cost:
            first_axes_processed = "y"
            second_axes_processed = "x" if x_opt.cost > z_opt.cost else "z"
        elif z_opt.cost > x_opt.cost and z_opt.cost > y_opt.cost:
            first_axes_processed = "z"
            second_axes_processed = "x" if x_opt.cost > y_opt.cost else "y"

        grid_infotext = [None] * (1 + len(zs))

        def cell(x, y, z, ix, iy, iz):
            if state.interrupted or state.stopping_generation:
                return processing.Processed(p, [], p.seed, "")
            pc = copy(p)
            pc.styles = pc.styles[:]
            x_opt.apply(pc, x, xs)
            y_opt.apply(pc, y, ys)
            z_opt.apply(pc, z, zs)
            xdim = len(xs) if vary_seeds_x else 1
            ydim = len(ys) if vary_seeds_y else 1
            if vary_seeds_x:
                pc.seed += ix
            if vary_seeds_y:
                pc.seed += iy * xdim
            if vary_seeds_z:
                pc.seed += iz * xdim * ydim
            try:
                res = processing.process_images(pc)
            except Exception as e:  # errors.display(e, "generating image for xyz plot")
                self.cell_errors = getattr(self, "cell_errors", []) + [e]
                res = processing.Processed(p, [], p.seed, "")

            subgrid_index = 1 + iz
            if grid_infotext[subgrid_index] is None and ix == 0 and iy == 0:
                pc.extra_generation_params = copy(pc.extra_generation_params)
                pc.extra_generation_params["Script"] = self.title()
                for axis, opt, values, parsed in (("X", x_opt, x_values, xs), ("Y", y_opt, y_values, ys)):
                    if opt.label != "Nothing":
                        pc.extra_generation_params[f"{axis} Type"] = opt.label
                        pc.extra_generation_params[f"{axis} Values"] = values
                        if opt.label in ["Seed", "Var. seed"] and not no_fixed_seeds:
                            pc.extra_generation_params[f"Fixed {axis} Values"] = ", ".join([str(v) for v in parsed])
                grid_infotext[subgrid_index] = processing.create_infotext(pc, pc.all_prompts, pc.all_seeds, pc.all_subseeds)

            if grid_infotext[0] is None and ix == 0 and iy == 0 and iz == 0:
                pc.extra_generation_params = copy(pc.extra_generation_params)
                if z_opt.label != "Nothing":
                    pc.extra_generation_params["Z Type"] = z_opt.label
                    pc.extra_generation_params["Z Values"] = z_values
                    if z_opt.label in ["Seed", "Var. seed"] and not no_fixed_seeds:
                        pc.extra_generation_params["Fixed Z Values"] = ", ".join([str(v) for v in zs])
                grid_infotext[0] = processing.create_infotext(pc, pc.all_prompts, pc.all_seeds, pc.all_subseeds)
            return res

        with SharedSettingsStackHelper():
            processed = draw_xyz_grid(
                p, xs=xs, ys=ys, zs=zs,
                x_labels=[x_opt.format_value(p, x_opt, x) for x in xs],
                y_labels=[y_opt.format_value(p, y_opt, y) for y in ys],
                z_labels=[z_opt.format_value(p, z_opt, z) for z in zs],
                cell=cell, first_axes_processed=first_axes_processed, second_axes_processed=second_axes_processed,
            )

        if not processed.images:
            return processed

        z_count = len(zs)
        processed.infotexts[:1 + z_count] = grid_infotext[:1 + z_count]
        if not include_lone_images:
            processed.images = processed.images[:z_count + 1]
        if not include_sub_grids:
            for _ in range(z_count):
                del processed.images[1]
                del processed.all_prompts[1]
                del processed.all_seeds[1]
                del processed.infotexts[1]
        return processed
