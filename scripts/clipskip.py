"""sd-webui-clipskip: the WebUI entry point.  Thin glue only; the logic lives in ``lib_clipskip``."""

from modules import scripts

from lib_clipskip import extension, panel


class ClipSkipScript(scripts.Script):
    sorting_priority = 10  # Forge: place the panel near the other generation settings

    def title(self):
        return extension.TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        from modules.ui_components import InputAccordion

        self.panel = panel.build(self.elem_id, InputAccordion, self.title(), tab="img2img" if is_img2img else "txt2img")
        return self.panel.inputs

    def before_process(self, p, *args):
        extension.before_process(p, args)

    def postprocess(self, p, processed, *args):
        extension.finish(p)
