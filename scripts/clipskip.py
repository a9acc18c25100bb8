"""sd-webui-clipskip: the WebUI entry point.  Thin glue only; the logic lives in ``lib_clipskip``."""

import weakref
from typing import ClassVar

from modules import processing, script_callbacks, scripts

from lib_clipskip import extension, generation, panel_ui, paste, prompt_tag, settings, steps, xyz

# our pass-throughs on the host's conditioning-cache methods, before any other extension wraps a p
generation.install_hooks(processing.StableDiffusionProcessing)


class ClipSkipScript(scripts.Script):
    sorting_priority = 10  # Forge: place the panel near the other generation settings
    built: ClassVar[weakref.WeakSet] = weakref.WeakSet()  # instances whose UI exists (txt2img, img2img; again after a UI reload)

    def title(self):
        return extension.TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        from modules.ui_components import InputAccordion

        self.panel = panel_ui.build(self.elem_id, InputAccordion, self.title(), tab="img2img" if is_img2img else "txt2img")
        self.infotext_fields = paste.paste_fields(self.panel)  # paste, PNG Info, the API's infotext
        self.paste_field_names = list(paste.PASTE_FIELD_NAMES)  # "Send to img2img" from the gallery
        ClipSkipScript.built.add(self)
        return self.panel.inputs

    def before_process(self, p, *args):
        extension.before_process(p, args)

    def postprocess(self, p, processed, *args):
        extension.finish(p)


# Settings section; the <clipskip:…> tag (register before the UI: extra_networks.initialize()
# clears the registry after scripts load); other tools' infotext keys on paste
script_callbacks.on_ui_settings(settings.register)
script_callbacks.on_before_ui(prompt_tag.register)
script_callbacks.on_infotext_pasted(paste.on_pasted)
script_callbacks.on_cfg_denoiser(steps.on_cfg_denoiser)  # a schedule's conditioning per sampling step
# after ui-config.json was applied: the sliders hold floats again (the API's infotext casts to that type)
script_callbacks.on_app_started(lambda *_: [panel_ui.keep_value_types(s.panel) for s in list(ClipSkipScript.built)])


# X/Y/Z axes: now (API-only mode builds its UI before on_before_ui) and again before the UI
# (deduplicated by label; a UI reload loads a fresh xyz module and runs both again)
xyz.register()
script_callbacks.on_before_ui(xyz.register)
