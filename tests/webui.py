"""Run the extension inside a host stand-in the way the WebUI does: load the script file, build
the UI of both tabs, make ``p`` objects with the full ``script_args`` and call ``process_images``."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import standin
import webui_models

from lib_clipskip.values import ARG_NAMES as OUR_ARGS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FILE = ROOT / "scripts" / "clipskip.py"
#: the host's root ``scripts/`` folder is listed before extensions' scripts, so X/Y/Z loads first


def xyz_file(host: str) -> Path:
    """The host's ``scripts/xyz_grid.py``: its own tree's, else the tree it builds on (Neo: Forge's)."""
    return next(path for tree in standin.LAYERS[host] if (path := Path(standin.HERE) / tree / "scripts" / "xyz_grid.py").exists())


class WebUI:
    def __init__(self, host: str, config_file: Path | None = None, api_only: bool = False,
                 ui_config_file: Path | None = None, extensions: tuple[str, ...] = ()):
        self.host = host
        self.extensions = extensions  # other extensions' stand-ins to load too, e.g. ("adetailer",)
        self.ui_config_file = ui_config_file  # ui-config.json: UI defaults by label (modules/ui_loadsave.py)
        self.api_only = api_only  # --nowebui: Api.__init__ builds the UI (ui()) before on_before_ui runs
        self.shared = standin.use(host)
        if config_file is not None:
            self.shared.load_config(config_file)
        from lib_clipskip import extension

        extension.adapter.cache_clear()
        self.scripts = importlib.import_module("modules.scripts")
        self.processing = importlib.import_module("modules.processing")
        self.callbacks = importlib.import_module("modules.script_callbacks")
        self.load_scripts()

    def load_scripts(self):
        """``modules.scripts.load_scripts`` then the UI: also what "Reload UI" does."""
        self.scripts.scripts_data.clear()
        self.scripts.reported_errors.clear()
        self.callbacks.clear_callbacks()
        self.xyz_module = self.scripts.register_scripts_from_file(str(xyz_file(self.host)))
        self.scripts.register_scripts_from_file(str(Path(standin.HERE) / "common" / "scripts" / "prompts_from_file.py"))
        for name in self.extensions:  # extensions load in folder order: "adetailer" before "sd-webui-clipskip"
            for path in sorted((Path(standin.HERE) / "extensions" / name / "scripts").glob("*.py")):
                self.scripts.register_scripts_from_file(str(path))
        self.module = self.scripts.register_scripts_from_file(str(SCRIPT_FILE))
        self.runners = {}
        self.build_ui()

    def build_ui(self):
        """``modules/ui.create_ui``: one Blocks per tab, then ``loadsave.add_block(interface, tab)``
        applies ``ui-config.json`` to every labelled component (ui.py:1110-1172)."""
        import gradio as gr

        ui_loadsave = importlib.import_module("modules.ui_loadsave")
        self.callbacks.ui_settings_callback()
        if not self.api_only:
            self.callbacks.before_ui_callback()
        self.interfaces = {}
        for tab, is_img2img in (("txt2img", False), ("img2img", True)):
            with gr.Blocks(analytics_enabled=False) as interface:
                runner = self.scripts.ScriptRunner()
                runner.initialize_scripts(is_img2img)
                runner.setup_ui()
            self.runners[tab] = runner
            self.interfaces[tab] = interface
        infotext_utils = importlib.import_module("modules.infotext_utils")
        for tab, runner in self.runners.items():  # ui.py: each tab's paste fields end with the scripts' own
            infotext_utils.add_paste_fields(tab, None, list(runner.infotext_fields))
        self.loadsave = ui_loadsave.UiLoadsave(str(self.ui_config_file or "/nonexistent/ui-config.json"))
        with gr.Blocks() as self.demo:
            for tab, interface in self.interfaces.items():
                interface.render()
                self.loadsave.add_block(interface, tab)
        if self.ui_config_file is not None:
            self.loadsave.dump_defaults()
        if self.api_only:
            self.callbacks.before_ui_callback()
        self.callbacks.app_started_callback(None if self.api_only else self.demo, None)  # webui.py:119 / :38

    # --- models ---------------------------------------------------------------------------
    def load(self, family: str, real: bool = False, seed: int = 0, name: str | None = None, checkpoint=None):
        """Load a model; ``checkpoint`` (a path) gives it the ``CheckpointInfo`` of that file, as
        selecting it in the host does (both hosts: ``sd_model.sd_checkpoint_info``; Forge also records
        the selection in ``model_data.forge_loading_parameters``)."""
        if self.host == "neo" and family == "sd2":
            import pytest

            pytest.skip("Forge Neo has no SD 2.x (no sd20 engine; backend/loader.py:558-565 refuses the checkpoint)")
        model = webui_models.build_model(self.host, family, real=real, seed=seed, name=name)
        if checkpoint is not None:
            model.sd_checkpoint_info = self.checkpoint_info(checkpoint)
        self.shared.sd_model = model
        if self.host in ("forge", "neo"):  # both load the selection at the next generation
            self.select(model.sd_checkpoint_info)
        return model

    def checkpoint_info(self, path):
        """``sd_models.CheckpointInfo(filename)`` registered as ``list_models`` does."""
        sd_models = importlib.import_module("modules.sd_models")
        info = sd_models.CheckpointInfo(str(path))
        info.register()
        return info

    def select(self, checkpoint):
        """Forge's checkpoint dropdown: ``refresh_model_loading_parameters`` records the selection;
        the model loads at the next generation (``modules_forge/main_entry.py:220-239``)."""
        info = checkpoint if not isinstance(checkpoint, (str, Path)) else self.checkpoint_info(checkpoint)
        importlib.import_module("modules.sd_models").model_data.forge_loading_parameters = {
            "checkpoint_info": info, "additional_modules": [], "unet_storage_dtype": None}
        return info

    def add_embedding(self, name: str, vectors):
        """A textual inversion registered the way each host's database does after reading its file
        (A1111: one database on ``model_hijack``; Forge: one per text-processing engine)."""
        from standin_common.text_pipeline import Embedding

        embedding = Embedding(vectors, name)
        model = self.shared.sd_model
        if self.host in ("a1111", "reforge", "classic"):  # reForge and Classic keep A1111's embedding database
            from modules import sd_hijack

            sd_hijack.model_hijack.embedding_db.register_embedding(embedding, model)
            return embedding
        for attribute in ("text_processing_engine", "text_processing_engine_l", "text_processing_engine_g"):
            engine = getattr(model, attribute, None)
            if engine is not None:
                engine.embeddings.register_embedding(embedding)
        return embedding

    def build(self, family: str, real: bool = False, seed: int = 0, name: str | None = None):
        return webui_models.build_model(self.host, family, real=real, seed=seed, name=name)

    # --- generations ----------------------------------------------------------------------
    def script(self, tab: str = "txt2img"):
        return self.runners[tab].script("CLIP skip")

    def script_args(self, tab: str = "txt2img", **ours):
        """Default args of every script, with ours replaced (by ``values.ARG_NAMES``)."""
        runner = self.runners[tab]
        args = runner.default_script_args()
        script = self.script(tab)
        names = OUR_ARGS
        for offset, name in enumerate(names):
            if name in ours:
                args[script.args_from + offset] = ours[name]
        return args

    def txt2img(self, prompt="a photo of a cat", **kwargs):
        ours = {k: kwargs.pop(k) for k in OUR_ARGS if k in kwargs}
        args = kwargs.pop("script_args", None)
        steps, seed = kwargs.pop("steps", 4), kwargs.pop("seed", 1)
        p = self.processing.StableDiffusionProcessingTxt2Img(prompt=prompt, steps=steps, seed=seed, **kwargs)
        p.scripts = self.runners["txt2img"]
        p.script_args = args if args is not None else self.script_args("txt2img", **ours)
        return p

    def img2img(self, prompt="a photo of a cat", **kwargs):
        ours = {k: kwargs.pop(k) for k in OUR_ARGS if k in kwargs}
        p = self.processing.StableDiffusionProcessingImg2Img(prompt=prompt, steps=kwargs.pop("steps", 4), seed=kwargs.pop("seed", 1),
                                                             init_images=[0.25], **kwargs)
        p.scripts = self.runners["img2img"]
        p.script_args = self.script_args("img2img", **ours)
        return p

    def run(self, p):
        return self.processing.process_images(p)

    def api_txt2img(self, prompt="a photo of a cat", infotext="", alwayson_scripts=None, **kwargs):
        """``Api.text2imgapi``: ``apply_infotext`` (script args and setting overrides from the infotext
        field, no paste callbacks), then ``init_script_args``; returns the ``p`` it would run."""
        api = importlib.import_module("modules.api.api")
        request = api.Request(infotext=infotext, alwayson_scripts=alwayson_scripts)
        mentioned = {}
        api.Api().apply_infotext(request, "txt2img", script_runner=self.runners["txt2img"], mentioned_script_args=mentioned)
        p = self.txt2img(prompt, override_settings=request.override_settings or {}, **kwargs)
        p.script_args = api.Api().init_script_args(request, self.runners["txt2img"].default_script_args(),
                                                   self.runners["txt2img"], input_script_args=mentioned)
        return p

    # --- X/Y/Z plot -----------------------------------------------------------------------
    def xyz_script(self, tab: str = "txt2img"):
        return self.runners[tab].script("X/Y/Z plot")

    def axis_labels(self, tab: str = "txt2img") -> list[str]:
        return [option.label for option in self.xyz_script(tab).current_axis_options]

    def prompts_from_file(self, p, text: str, tab: str = "txt2img"):
        """Run the built-in "Prompts from file or textbox" the way ``modules.txt2img`` runs a script."""
        script = self.runners[tab].script("Prompts from file or textbox")
        args = list(p.script_args)
        args[0] = self.runners[tab].selectable_scripts.index(script) + 1
        args[script.args_from:script.args_to] = [False, False, "start", text]
        p.script_args = args
        return self.runners[tab].run(p, *p.script_args)

    def xyz_args(self, p, x=("Nothing", ""), y=("Nothing", ""), z=("Nothing", ""), tab="txt2img", **flags):
        """``p.script_args`` selecting the X/Y/Z plot with axes given as ``(label, values)``."""
        script = self.xyz_script(tab)
        labels = self.axis_labels(tab)
        args = list(p.script_args)
        args[0] = self.runners[tab].selectable_scripts.index(script) + 1
        axes = []
        for label, values in (x, y, z):
            axes += [labels.index(label), values, values if isinstance(values, list) else []]
        options = {"draw_legend": True, "include_lone_images": False, "include_sub_grids": False, "no_fixed_seeds": False,
                   "vary_seeds_x": False, "vary_seeds_y": False, "vary_seeds_z": False, "margin_size": 0, "csv_mode": False}
        options.update(flags)
        args[script.args_from:script.args_to] = axes + list(options.values())
        return args

    def xyz(self, p, x=("Nothing", ""), y=("Nothing", ""), z=("Nothing", ""), tab="txt2img", **flags):
        """Run a grid the way ``modules.txt2img`` does: ``scripts.run(p, *p.script_args)``."""
        p.script_args = self.xyz_args(p, x, y, z, tab, **flags)
        return self.runners[tab].run(p, *p.script_args)

    def options_snapshot(self) -> str:
        return json.dumps(self.shared.opts.data, sort_keys=True, default=str)

    def close(self):
        standin.purge()
