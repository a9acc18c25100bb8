"""Forge dfdcbab6. Mirrors ``modules/sd_hijack.py``: a stub — no embedding_db, fixes or extra_generation_params."""


class StableDiffusionModelHijack:
    def hijack(self, m):
        pass

    def undo_hijack(self, m):
        pass


model_hijack = StableDiffusionModelHijack()
