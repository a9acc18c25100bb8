"""Command line, without a WebUI:

- ``python -m lib_clipskip check [options] [PATH...]`` checks LoRA / LyCORIS / embedding files
  against a model family and clip-skip value. Needs only numpy (torch, if installed, is used to
  read .pt/.bin/.ckpt safely).
- ``python -m lib_clipskip infotext [options] (TEXT | IMAGE ...)`` says what a parameters text or
  an image's metadata means in each tool's CLIP-skip numbering (``lib_clipskip.infotext_cli``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .compat import analyze_file, check_files, walk_model_files
from .compat.advice import DEFAULT_CLIP_SKIP, fmt_skip
from .compat.analysis import IMAGE_EXTS
from .compat.report import ENCODER_LAYERS, HOSTS, KIND_EMBEDDING, SD_FAMILIES
from .infotext_cli import add_parser as add_infotext_parser
from .infotext_cli import run as run_infotext

# Folders of a WebUI install that hold LoRAs and embeddings (A1111 and Forge defaults).
WEBUI_MODEL_FOLDERS = ("models/Lora", "models/LyCORIS", "embeddings")
MAX_SKIP_BY_MODEL = {"sd1": 12, "sd2": 24, "sdxl": 12}


def _clip_skip_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= ENCODER_LAYERS["clip_g"]:
        raise argparse.ArgumentTypeError(f"clip skip must be between 1 and 32, got {text}")
    return int(value) if value.is_integer() else value


def _torch_version(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in text.split(".")[:2])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version like 2.6: {text!r}") from None
    return major, minor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib_clipskip",
        description="CLIP-skip tools that run without a WebUI.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="check LoRA / LyCORIS / embedding files against a model and clip skip",
        description=(
            "Report, per file, its kind, format, model family, the clip skip it "
            "was trained at, the text-encoder layers it touches, and warnings for "
            "the given "
            "model and value. Without PATH, scans models/Lora, models/LyCORIS and "
            "embeddings of the WebUI in the current folder."
        ),
    )
    check.add_argument(
        "--clip-skip",
        type=_clip_skip_value,
        metavar="N",
        help="value to check at (default: each family's host default: SD1 1, SD2/SDXL 2)",
    )
    check.add_argument(
        "--clip-skip-g",
        type=_clip_skip_value,
        metavar="N",
        help="SDXL OpenCLIP-G value (default: same as --clip-skip)",
    )
    check.add_argument(
        "--model",
        choices=SD_FAMILIES,
        help="family of the model you generate with (default: each file's own family)",
    )
    check.add_argument("--host", choices=HOSTS, default="a1111", help="default: a1111")
    check.add_argument(
        "--torch-version",
        type=_torch_version,
        metavar="X.Y",
        help="the torch your WebUI runs, if you changed it: from 2.6 on, .pt files with e.g. an "
        "nn.ParameterDict no longer load (default: the torch the host installs, 2.1 / 2.3)",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any warning or unreadable file was reported",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
    add_infotext_parser(commands)
    return parser


def _is_webui_root(folder: str) -> bool:
    has_entry = any(os.path.isfile(os.path.join(folder, n)) for n in ("webui.py", "launch.py"))
    return has_entry and os.path.isdir(os.path.join(folder, "models"))


def _is_embedding_image(path: str) -> bool:
    report = analyze_file(path)
    return report.kind == KIND_EMBEDDING or report.error is not None


def collect_files(paths) -> list[str]:
    """Explicit files as given; folders walked recursively. In folders, images count
    only when they carry an embedding, or something that fails to read as one (LoRA
    previews are images too, and the hosts skip images without an embedding)."""
    files = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        for found in walk_model_files(path):
            if found.lower().endswith(IMAGE_EXTS) and not _is_embedding_image(found):
                continue
            files.append(found)
    seen = set()
    return [f for f in files if not (f in seen or seen.add(f))]


def _layers_text(layers: list[int]) -> str:
    if layers == list(range(layers[0], layers[-1] + 1)) and len(layers) > 1:
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))


def describe(report) -> str:
    if report.error:
        return f"{report.path}: unreadable"
    parts = [report.kind]
    if report.format_label:
        parts.append(report.format_label)
    parts.append(report.family)
    if report.trained_clip_skip is not None:
        parts.append(f"trained at clip skip {fmt_skip(report.trained_clip_skip)} ({report.trained_clip_skip_source})")
    for encoder, layers in report.te_layers.items():
        parts.append(f"{encoder} layers {_layers_text(layers)}")
    return f"{report.path}: " + ", ".join(parts)


def _json_number(value):
    return None if value is None else value


def run_check(args, parser) -> int:
    paths = args.paths
    if not paths:
        cwd = os.getcwd()
        if not _is_webui_root(cwd):
            print(
                "Not in a WebUI folder (no webui.py/launch.py next to models/). "
                "Pass the files or folders to check, e.g.:\n"
                "  python -m lib_clipskip check --model sd1 --clip-skip 2 "
                "path/to/models/Lora path/to/embeddings",
                file=sys.stderr,
            )
            return 2
        paths = [p for p in (os.path.join(cwd, f) for f in WEBUI_MODEL_FOLDERS) if os.path.isdir(p)]
    for path in paths:
        if not os.path.exists(path):
            parser.error(f"no such file or folder: {path}")
    if args.model and args.clip_skip is not None and args.clip_skip > MAX_SKIP_BY_MODEL[args.model]:
        parser.error(f"--clip-skip for {args.model} is at most {MAX_SKIP_BY_MODEL[args.model]}")

    reports = check_files(
        collect_files(paths),
        args.model,
        args.clip_skip,
        args.clip_skip_g,
        host=args.host,
        torch_version=args.torch_version,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "clip_skip": args.clip_skip,
                    "clip_skip_g": args.clip_skip_g,
                    "host": args.host,
                    "files": [r.to_json() for r in reports],
                },
                indent=2,
            )
        )
    else:
        if args.clip_skip is None:
            defaults = ", ".join(f"{f} {v}" for f, v in DEFAULT_CLIP_SKIP.items())
            print(f"(no --clip-skip: checking at each family's default: {defaults})")
        for report in reports:
            print(describe(report))
            for warning in report.warnings:
                print(f"    ! {warning.code}: {warning.message}")
            for note in report.notes:
                print(f"    - {note}")
        flagged = sum(1 for r in reports if r.warnings)
        print(f"{len(reports)} file(s) checked, {flagged} with warnings")
    if args.strict and any(r.warnings or r.error for r in reports):
        return 1
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return run_check(args, parser)
    if args.command == "infotext":
        return run_infotext(args, commands_parser(parser, "infotext"))
    parser.error(f"unknown command {args.command}")
    return 2


def commands_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subcommand's own parser, so that its usage errors show its usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    return parser


if __name__ == "__main__":
    sys.exit(main())
