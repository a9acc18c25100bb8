"""The shape the project promises: lib_clipskip imports without a WebUI, install.py installs
nothing the WebUI owns, and the code parses as Python 3.10."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib_clipskip"
HOST_OWNED = {"torch", "gradio", "transformers", "safetensors", "numpy"}


def lib_modules():
    for path in sorted(LIB.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_lib_imports_nothing_from_the_webui_or_gradio_in_a_clean_interpreter():
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(lib_modules())!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('modules', 'gradio', 'launch', 'backend', 'torch', 'transformers'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def _without_strings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.unparse(tree)


def test_host_differences_live_only_in_the_adapter_package():
    for path in LIB.rglob("*.py"):
        if "hosts" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name == "tooltable.py":  # the translation table cites the tools' files in its source column
            text = _without_strings(text)
        for needle in ("text_processing_engine", "sd_hijack", "is_forge", "backend."):
            assert needle not in text, f"{path.relative_to(ROOT)} knows a host detail ({needle})"


def test_install_py_installs_nothing_the_webui_owns():
    tree = ast.parse((ROOT / "install.py").read_text(encoding="utf-8"))
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    for owned in HOST_OWNED:
        assert not any(s.split("==")[0].split(">=")[0].strip() == owned for s in strings), owned


def test_every_python_file_parses_as_python_3_10():
    for path in [*ROOT.glob("*.py"), *(ROOT / "scripts").rglob("*.py"), *LIB.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


def test_every_module_is_under_400_lines():
    for path in LIB.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").count("\n")
        assert lines < 400, f"{path.relative_to(ROOT)} has {lines} lines"


def _module_imports(path: Path, name: str, modules) -> set[str]:
    """lib_clipskip modules imported at module level (not inside functions) by the file ``path``:
    ``from package import submodule`` counts as the submodule, ``from module import name`` as the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycles_between_modules():
    modules = dict(zip(lib_modules(), sorted(LIB.rglob("*.py"))))
    graph = {name: _module_imports(path, name, modules) for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name, stack):
        state[name] = 1
        for other in sorted(graph[name]):
            assert state.get(other) != 1, "import cycle: " + " -> ".join([*stack, name, other])
            if other not in state:
                visit(other, [*stack, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
