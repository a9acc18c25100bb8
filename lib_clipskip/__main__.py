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

from .compat import analyze_file, check_files, terminal, walk_model_files
from .compat.advice import DEFAULT_CLIP_SKIP, HOST_LABELS
from .compat.analysis import IMAGE_EXTS
from .compat.report import ENCODER_LAYERS, FAMILY_LABELS, HOSTS, KIND_EMBEDDING, SD_FAMILIES
from .compat.webui_folders import find_webui_root, webui_folders
from .infotext_cli import add_parser as add_infotext_parser
from .infotext_cli import run as run_infotext

MAX_SKIP_BY_MODEL = {"sd1": 12, "sd2": 24, "sdxl": 12}
#: this extension's folder: installed in a WebUI, that WebUI is two levels up
EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def build_parser(prog: str = "python -m lib_clipskip") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="CLIP-skip tools that run without a WebUI.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="check LoRA / LyCORIS / embedding files against a model and clip skip",
        description=(
            "Report, per file, its kind, format, model family, the clip skip it "
            "was trained at, the text-encoder layers it touches, and warnings for "
            "the given model and value. Without PATH, scans the LoRA and embedding folders of the "
            "WebUI in the current folder or the WebUI this extension is installed in, as that WebUI "
            "reads them (models/Lora, A1111's models/LyCORIS, embeddings, or what --lora-dir, "
            "--lyco-dir-backcompat, --embeddings-dir, --data-dir and --models-dir in webui-user.sh "
            "(webui-user.bat on Windows) set)."
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
    check.add_argument("--host", choices=HOSTS, help="default: the WebUI's found without PATH, else a1111")
    check.add_argument(
        "--torch-version",
        type=_torch_version,
        metavar="X.Y",
        help="the torch your WebUI runs, if you changed it: from 2.6 on, .pt files with e.g. an "
        "nn.ParameterDict no longer load (default: the torch the host installs, 2.1 / 2.3)",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("-q", "--quiet", action="store_true",
                       help="print only the files with warnings or errors, and nothing else")
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any warning or unreadable file was reported",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
    add_infotext_parser(commands)
    return parser


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


def _webui_lines(webui, cwd: str, style) -> list[str]:
    def shown(folders) -> str:
        return ", ".join(f"{terminal.shown_path(f.path, cwd)} ({f.origin}{'' if os.path.isdir(f.path) else ', missing'})"
                         for f in folders)

    lines = [f"{HOST_LABELS.get(webui.host, webui.host)} WebUI in {style('bold', webui.root)}",
             f"  LoRA folders: {shown(webui.lora)}", f"  embedding folders: {shown(webui.embeddings)}"]
    return lines + [f"  {style('cyan', 'note')}: {note}" for note in webui.notes]


def _webui_above_the_logical_folder(cwd: str) -> str | None:
    """An extension folder reached through a symlink: the shell's ``$PWD`` still names the WebUI's
    ``extensions/...`` path that ``os.getcwd()`` resolved away."""
    logical = os.environ.get("PWD")
    try:
        same = bool(logical) and logical != cwd and os.path.samefile(logical, cwd)
    except OSError:
        return None
    return find_webui_root(logical, logical) if same else None


def run_check(args, parser) -> int:
    cwd = os.getcwd()
    paths, webui = args.paths, None
    if not paths:
        root = find_webui_root(cwd, EXTENSION_DIR) or _webui_above_the_logical_folder(cwd)
        if root is None:
            print(
                "No WebUI here: run this in your WebUI folder or in its extensions/sd-webui-clipskip "
                "folder, or name the files or folders to check, e.g. "
                "--model sd1 --clip-skip 2 path/to/Lora path/to/embeddings",
                file=sys.stderr,
            )
            return 2
        webui = webui_folders(root, host=args.host)
        paths = [path for path in webui.paths if os.path.isdir(path)]
    for path in paths:
        if not os.path.exists(path):
            parser.error(f"no such file or folder: {path}")
    if args.model and args.clip_skip is not None and args.clip_skip > MAX_SKIP_BY_MODEL[args.model]:
        parser.error(f"--clip-skip for {args.model} is at most {MAX_SKIP_BY_MODEL[args.model]}")
    host = args.host or (webui.host if webui else "a1111")

    reports = check_files(
        collect_files(paths),
        args.model,
        args.clip_skip,
        args.clip_skip_g,
        host=host,
        torch_version=args.torch_version,
    )
    if args.json:
        print(json.dumps({"model": args.model, "clip_skip": args.clip_skip, "clip_skip_g": args.clip_skip_g, "host": host,
                          "webui": webui.to_json() if webui else None, "files": [r.to_json() for r in reports]}, indent=2))
    else:
        style = terminal.Style(terminal.use_colour(sys.stdout, os.environ))
        lines = []
        if not args.quiet:
            lines += _webui_lines(webui, cwd, style) if webui else []
            if args.clip_skip is None:
                defaults = ", ".join(f"{FAMILY_LABELS[f]} {v}" for f, v in DEFAULT_CLIP_SKIP.items())
                lines.append(f"No --clip-skip: each file is checked at its family's default ({defaults}).")
        for report in reports:
            if not (args.quiet and terminal.status(report) in ("ok", "other")):
                lines += terminal.file_lines(report, cwd, style, quiet=args.quiet)
        if not args.quiet:
            lines.append(terminal.summary(reports, style))
        if lines:
            print("\n".join(lines))
    if args.strict and any(r.warnings or r.error for r in reports):
        return 1
    return 0


def main(argv=None, prog: str = "python -m lib_clipskip") -> int:
    parser = build_parser(prog)
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
