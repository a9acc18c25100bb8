"""Mirrors ``modules/sd_emphasis.py`` (A1111 v1.10.1) = ``backend/text_processing/emphasis.py`` (Forge dfdcbab6)."""

from __future__ import annotations


class Emphasis:
    name = "Base"
    description = ""

    def after_transformers(self):
        pass


class EmphasisNone(Emphasis):
    name = "None"


class EmphasisIgnore(Emphasis):
    name = "Ignore"


class EmphasisOriginal(Emphasis):
    name = "Original"

    def after_transformers(self):
        original_mean = self.z.mean()
        self.z = self.z * self.multipliers.reshape(self.multipliers.shape + (1,)).expand(self.z.shape)
        new_mean = self.z.mean()
        self.z = self.z * (original_mean / new_mean)  # the division that turns a zero-mean z into NaN


class EmphasisOriginalNoNorm(EmphasisOriginal):
    name = "No norm"

    def after_transformers(self):
        self.z = self.z * self.multipliers.reshape(self.multipliers.shape + (1,)).expand(self.z.shape)


options = [EmphasisNone, EmphasisIgnore, EmphasisOriginal, EmphasisOriginalNoNorm]


def get_current_option(emphasis_option_name):
    return next(iter([x for x in options if x.name == emphasis_option_name]), EmphasisOriginal)
