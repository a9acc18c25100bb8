"""The LoRA and embedding folders of a WebUI install, found from where the user stands.

The command line check runs outside the WebUI, so it works out what the WebUI would read:

- the WebUI folder is the current folder, or the one this extension is installed in
  (``<WebUI>/extensions/sd-webui-clipskip``);
- its folders are the hosts' defaults (A1111 v1.10.1 and Forge: ``modules/paths_internal.py``,
  ``modules/cmd_args.py``, the LoRA extension's ``preload.py``): ``models/Lora``, A1111's
  ``models/LyCORIS`` (Forge lists ``--lora-dir`` only, ``sd_forge_lora/networks.py:131``) and
  ``embeddings``, moved by ``--data-dir``, ``--models-dir``, ``--lora-dir``,
  ``--lyco-dir-backcompat`` (``--lyco-dir``), ``--embeddings-dir`` and Forge's
  ``--forge-ref-a1111-home`` (``launch_utils.py:513``);
- those arguments come from ``COMMANDLINE_ARGS`` as ``webui-user.sh`` sets it (``webui-user.bat``
  on Windows), else from the environment, split as the hosts split it (``shlex.split``).

A file the check cannot follow (a command substitution, a variable set elsewhere) is not
guessed at: the defaults are used and a note says why.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

#: how the hosts' argparse parsers spell the options that move these folders
_OPTIONS = {
    "--data-dir": "data_dir",
    "--models-dir": "models_dir",
    "--lora-dir": "lora_dir",
    "--lyco-dir-backcompat": "lyco_dir",
    "--lyco-dir": "lyco_dir",  # an abbreviation argparse accepts; the hosts' help names it
    "--embeddings-dir": "embeddings_dir",
    "--forge-ref-a1111-home": "a1111_home",
    "--model-ref": "models_dir",  # Forge Classic and Neo: "base path for all models" (modules/paths_internal.py)
}
_SH_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_BAT_SET = re.compile(r'^\s*@?set\s+(?:"([^=]+)=(.*)"|([^=\s"]+)=(.*))$', re.IGNORECASE)
_BAT_COMMENT = re.compile(r"^\s*(?:@?rem\b|::)", re.IGNORECASE)


class UnreadableSetting(Exception):
    """The value depends on something only the shell knows when the WebUI starts."""


@dataclass
class Folder:
    path: str
    origin: str  # "default", or where the path was set, e.g. "--lora-dir in webui-user.sh"


@dataclass
class WebUIFolders:
    root: str
    host: str  # "a1111" | "forge" | "reforge" | "forge-classic"
    lora: list[Folder] = field(default_factory=list)
    embeddings: list[Folder] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [folder.path for folder in self.lora + self.embeddings]

    def to_json(self) -> dict:
        return {"root": self.root, "host": self.host,
                "lora_dirs": [vars(f) for f in self.lora], "embedding_dirs": [vars(f) for f in self.embeddings],
                "notes": list(self.notes)}


def is_webui_root(folder: str) -> bool:
    has_entry = any(os.path.isfile(os.path.join(folder, name)) for name in ("webui.py", "launch.py"))
    return has_entry and any(os.path.isdir(os.path.join(folder, name)) for name in ("models", "modules"))


def find_webui_root(cwd: str, extension_dir: str) -> str | None:
    """The current folder if it is a WebUI's, else the WebUI this extension is installed in."""
    if is_webui_root(cwd):
        return os.path.abspath(cwd)
    extensions = os.path.dirname(os.path.abspath(extension_dir))
    if os.path.basename(extensions) == "extensions" and is_webui_root(os.path.dirname(extensions)):
        return os.path.dirname(extensions)
    return None


def host_of(root: str) -> str:
    """Forge carries its own packages next to ``modules`` (``modules_forge``, ``backend``); reForge
    has ``modules_forge`` without ``backend``, its encoders in ``modules_forge/forge_clip.py``."""
    if not os.path.isdir(os.path.join(root, "modules_forge")):
        return "a1111"
    forge_clip = os.path.join(root, "modules_forge", "forge_clip.py")
    if not os.path.isfile(forge_clip):
        return "forge"
    try:  # Forge Classic's wrappers have no minimal_clip_skip (lib_clipskip.hosts.reforge.follows_option_everywhere)
        with open(forge_clip, encoding="utf-8", errors="replace") as file:
            return "reforge" if "self.minimal_clip_skip" in file.read(200_000) else "forge-classic"
    except OSError:
        return "reforge"


# --- COMMANDLINE_ARGS as the start scripts set it ---------------------------------------------


def _sh_word(text: str, variables: Mapping[str, str]) -> str:
    """The value of a shell assignment's right-hand side: quotes, escapes and ``$NAME`` as sh reads them."""
    out, i, quote = [], 0, None
    while i < len(text):
        char = text[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
        elif char == "\\" and i + 1 < len(text):
            if quote != '"' or text[i + 1] in '$`"\\':
                i += 1
            out.append(text[i])
        elif char == "$":
            name = re.match(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)", text[i + 1:])
            if not name:
                raise UnreadableSetting(f"it uses {text[i:i + 2]}…, which only the shell can work out")
            key = name.group(1) or name.group(2)
            if key not in variables:
                raise UnreadableSetting(f"it uses ${key}, which is set outside the file")
            out.append(variables[key])
            i += name.end()
        elif char == "`":
            raise UnreadableSetting("it runs a command (`…`)")
        elif char in "'\"" and quote is None:
            quote = char
        elif char == '"' and quote == '"':
            quote = None
        elif char in " \t;#" and quote is None:
            break  # the end of the word (a comment, or a command after the assignment)
        else:
            out.append(char)
        i += 1
    if quote:
        raise UnreadableSetting("a quote is never closed")
    return "".join(out)


def _sh_commandline_args(text: str, environ: Mapping[str, str]) -> str | None:
    """COMMANDLINE_ARGS after running the assignments of a ``webui-user.sh`` top to bottom."""
    variables = {"COMMANDLINE_ARGS": "", **environ}  # unset, it reads as empty
    value = None
    for line in text.replace("\\\n", "").splitlines():
        match = _SH_ASSIGNMENT.match(line)
        if not match:
            continue
        name, raw = match.groups()
        try:
            variables[name] = _sh_word(raw, variables)
        except UnreadableSetting:
            if name == "COMMANDLINE_ARGS":
                raise
            variables.pop(name, None)  # using it later makes COMMANDLINE_ARGS unreadable, not wrong
            continue
        if name == "COMMANDLINE_ARGS":
            value = variables[name]
    return value


def _bat_commandline_args(text: str, environ: Mapping[str, str], folder: str) -> str | None:
    """COMMANDLINE_ARGS after the ``set`` lines of a ``webui-user.bat`` (``%NAME%`` expanded, ``^`` joins lines)."""
    variables = {"COMMANDLINE_ARGS": "", **{k.upper(): v for k, v in environ.items()}}
    value = None
    for line in re.sub(r"\^\r?\n", "", text).splitlines():
        if _BAT_COMMENT.match(line):
            continue
        match = _BAT_SET.match(line)
        if not match:
            continue
        name = (match.group(1) or match.group(3)).strip().upper()
        raw = match.group(2) if match.group(1) is not None else match.group(4)

        def expand(found: re.Match, line_vars: dict = variables) -> str:
            key = found.group(1).upper()
            if key not in line_vars:
                raise UnreadableSetting(f"it uses %{found.group(1)}%, which is set outside the file")
            return line_vars[key]

        raw = re.sub(r"%~dp0", lambda _: folder.rstrip("\\/") + os.sep, raw, flags=re.IGNORECASE)  # the script's folder
        try:
            expanded = re.sub(r"%([^%\s]+)%", expand, raw)
        except UnreadableSetting:
            if name == "COMMANDLINE_ARGS":
                raise
            variables.pop(name, None)
            continue
        variables[name] = expanded
        if name == "COMMANDLINE_ARGS":
            value = expanded
    return value


def commandline_args(root: str, windows: bool, environ: Mapping[str, str]) -> tuple[list[str], str | None, str | None]:
    """(arguments, where they came from, why they could not be read) for the WebUI at ``root``."""
    script = "webui-user.bat" if windows else "webui-user.sh"
    path = os.path.join(root, script)
    value, source, problem = None, None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(1_000_000)
        value = _bat_commandline_args(text, environ, root) if windows else _sh_commandline_args(text, environ)
        source = script if value is not None else None
    except FileNotFoundError:
        pass
    except OSError as exc:
        problem = f"could not read {script} ({exc.strerror or exc})"
    except UnreadableSetting as exc:
        problem = f"could not read COMMANDLINE_ARGS in {script}: {exc}"
    if value is None and problem is None and environ.get("COMMANDLINE_ARGS"):
        value, source = environ["COMMANDLINE_ARGS"], "the COMMANDLINE_ARGS environment variable"
    if value is None:
        return [], None, problem
    try:
        return shlex.split(value), source, None  # what the hosts do (paths_internal.py)
    except ValueError as exc:
        return [], None, f"could not split COMMANDLINE_ARGS from {source} ({exc})"


def folder_options(args: list[str]) -> dict[str, str]:
    """The folder options in ``args``, the last one winning (argparse's ``store``)."""
    found: dict[str, str] = {}
    tokens = iter(args)
    for token in tokens:
        name, equals, value = token.partition("=")
        if name not in _OPTIONS:
            continue
        if not equals:
            value = next(tokens, None)
            if value is None:
                break
        found[_OPTIONS[name]] = value
        if _OPTIONS[name] == "models_dir":
            found["models_dir_flag"] = name  # --models-dir (A1111, Forge, reForge) or --model-ref (Classic, Neo)
    return found


def _host_source(root: str, relative: str, limit: int = 400_000) -> str:
    try:
        with open(os.path.join(root, relative), encoding="utf-8", errors="replace") as file:
            return file.read(limit)
    except OSError:
        return ""


#: ``ModelRef("--lora-dir", "models/Lora")`` / ``ModelRef(arg_name=…, relative_path=…)`` in launch_utils.py
_MODEL_REF = re.compile(r'ModelRef\(\s*(?:arg_name=)?"(--embeddings-dir|--lora-dir)"\s*,\s*(?:relative_path=)?"([^"]+)"')


def reference_paths(root: str) -> dict[str, str]:
    """Where ``--forge-ref-a1111-home`` points the embeddings and LoRA folders, read from the host's own
    ``configure_forge_reference_checkout``: Forge dfdcbab6 ``embeddings`` / ``models/lora``, reForge 3b56b268
    ``embeddings`` / ``models/Lora``, Forge Classic 1f95d717 and Neo ``models/embeddings`` / ``models/Lora``."""
    found = {_OPTIONS[flag]: os.path.normpath(rel) for flag, rel in _MODEL_REF.findall(_host_source(root, "modules/launch_utils.py"))}
    return {"embeddings_dir": found.get("embeddings_dir", "embeddings"),
            "lora_dir": found.get("lora_dir", os.path.join("models", "lora"))}


def embeddings_under_models(root: str) -> bool:
    """Forge Classic and Neo keep embeddings in the models folder (``cmd_args.py``: ``--embeddings-dir``
    defaults to ``os.path.join(models_path, "embeddings")``); A1111, Forge and reForge in the data folder."""
    line = next((line for line in _host_source(root, "modules/cmd_args.py").splitlines() if '"--embeddings-dir"' in line), "")
    return "models_path" in line


def webui_folders(root: str, host: str | None = None, windows: bool | None = None,
                  environ: Mapping[str, str] | None = None) -> WebUIFolders:
    """The folders the WebUI at ``root`` reads LoRAs and embeddings from, and where each was set."""
    windows = os.name == "nt" if windows is None else windows
    environ = os.environ if environ is None else environ
    host = host or host_of(root)
    args, source, problem = commandline_args(root, windows, environ)
    options = folder_options(args)
    result = WebUIFolders(root=root, host=host)
    if problem:
        result.notes.append(f"{problem}; using the default folders")

    def path(value: str) -> str:  # the hosts make paths absolute against the folder they start in (no ~)
        return os.path.normpath(os.path.join(root, value))

    def set_by(option: str) -> str:
        return f"{option} from {source}"

    if host in ("forge", "reforge", "forge-classic") and "a1111_home" in options:
        # the Forges add these unless they were given (launch_utils.py configure_forge_reference_checkout)
        for key, sub in reference_paths(root).items():
            target = os.path.join(path(options["a1111_home"]), sub)
            if key not in options and os.path.exists(target):
                options[key] = target
                options[key + "_origin"] = set_by("--forge-ref-a1111-home")
    data = path(options.get("data_dir", root))
    models = path(options["models_dir"]) if "models_dir" in options else os.path.join(data, "models")
    embeddings_in_models = embeddings_under_models(root)

    def folder(key: str, option: str, default: str) -> Folder:
        if key in options:
            return Folder(path(options[key]), options.get(key + "_origin") or set_by(option))
        models_flag = options.get("models_dir_flag", "--models-dir")
        moved = [name for name, present in (("--data-dir", "data_dir" in options), (models_flag, "models_dir" in options))
                 if present and (name == "--data-dir" or key != "embeddings_dir" or embeddings_in_models)]
        return Folder(default, set_by(moved[-1]) if moved else "default")

    result.lora.append(folder("lora_dir", "--lora-dir", os.path.join(models, "Lora")))
    if host == "a1111":
        result.lora.append(folder("lyco_dir", "--lyco-dir-backcompat", os.path.join(models, "LyCORIS")))
    embeddings_default = os.path.join(models if embeddings_in_models else data, "embeddings")
    result.embeddings.append(folder("embeddings_dir", "--embeddings-dir", embeddings_default))
    return result
