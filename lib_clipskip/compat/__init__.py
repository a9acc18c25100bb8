"""LoRA / LyCORIS / textual-inversion compatibility analysis (no WebUI or gradio
imports).

Panel entry points: ``ModelIndex.resolve_prompt`` (which files a prompt uses) and
``check_files`` (reports with warnings for the loaded model and value).
"""

from .advice import DEFAULT_CLIP_SKIP, last_used_layer, warnings_for
from .analysis import analyze_path
from .cache import ReportCache, analyze_file, check_files, default_cache
from .paths import is_under_roots, walk_model_files
from .prompt import (
    ModelIndex,
    PromptReference,
    parse_lora_names,
    resolve_prompt_files,
)
from .report import (
    CODE_FAMILY_MISMATCH,
    CODE_HOST_CANNOT_LOAD,
    CODE_NO_EFFECT,
    CODE_TE_KEYS_IGNORED,
    CODE_TE_LAYERS_SKIPPED,
    CODE_TRAINED_SKIP_MISMATCH,
    CODE_UNREADABLE,
    FAMILY_LABELS,
    FORMAT_LABELS,
    CompatWarning,
    FileReport,
)

__all__ = [
    "CODE_FAMILY_MISMATCH",
    "CODE_HOST_CANNOT_LOAD",
    "CODE_NO_EFFECT",
    "CODE_TE_KEYS_IGNORED",
    "CODE_TE_LAYERS_SKIPPED",
    "CODE_TRAINED_SKIP_MISMATCH",
    "CODE_UNREADABLE",
    "DEFAULT_CLIP_SKIP",
    "FAMILY_LABELS",
    "FORMAT_LABELS",
    "CompatWarning",
    "FileReport",
    "ModelIndex",
    "PromptReference",
    "ReportCache",
    "analyze_file",
    "analyze_path",
    "check_files",
    "default_cache",
    "is_under_roots",
    "last_used_layer",
    "parse_lora_names",
    "resolve_prompt_files",
    "walk_model_files",
    "warnings_for",
]
