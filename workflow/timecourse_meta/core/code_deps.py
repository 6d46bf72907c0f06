"""Which source files of this package a rule's script runs, so that Snakemake reruns a step when its code
changes (Snakemake itself only tracks the script file, not the modules it imports).

Found by reading the code (``ast``), not by importing it. Modules are named by their dotted path inside the
package (``data.sheets``; ``""`` is the package's own ``__init__``). A script's ``from timecourse_meta.M import f``
pulls in module M's module-level imports and, within M, only what function ``f`` uses (the names it refers to,
the helpers of M it calls, and its own function-level imports); ``from timecourse_meta.S import M`` with M a
module pulls in all of M. Modules reached that way count in full, with everything they import, module-level or
inside functions, and with the ``__init__`` of every package on their path (Python runs those too). A change to
``steps.data.run_validate`` therefore reruns validation but not the model fits, while a change to a module of
``model/`` that the fit imports reruns every fit.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "timecourse_meta"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _file(module: str, package_dir: Path) -> Path | None:
    """The source file of a dotted module name, or None when it is not a module of the package."""
    parts = [p for p in module.split(".") if p]
    plain = package_dir.joinpath(*parts).with_suffix(".py") if parts else None
    if plain is not None and plain.is_file():
        return plain
    init = package_dir.joinpath(*parts, "__init__.py")
    return init if init.is_file() else None


def _is_package(module: str, package_dir: Path) -> bool:
    f = _file(module, package_dir)
    return f is not None and f.name == "__init__.py"


@functools.lru_cache(maxsize=None)
def _tree(module: str, package_dir: Path) -> ast.Module:
    return ast.parse(_file(module, package_dir).read_text(encoding="utf-8"))


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _base(node: ast.ImportFrom, module: str, package_dir: Path) -> str | None:
    """The dotted package-relative name an ImportFrom node imports from, or None when outside the package."""
    if node.level == 0:
        name = node.module or ""
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            return None
        return name[len(PACKAGE):].lstrip(".")
    here = module if _is_package(module, package_dir) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        here = here.rpartition(".")[0]
    return _join(here, node.module or "")


def _imports(nodes, module: str, package_dir: Path) -> tuple[set[str], dict[str, str]]:
    """Package modules imported by the ImportFrom nodes among `nodes` (of `module`), and alias -> module for the
    names those imports bind (``from timecourse_meta.data import harmonise as h`` binds h to data.harmonise;
    ``from timecourse_meta.report.tables import fmt`` binds fmt to report.tables)."""
    modules, aliases = set(), {}
    for node in nodes:
        if not isinstance(node, ast.ImportFrom):
            continue
        base = _base(node, module, package_dir)
        if base is None:
            continue
        for alias in node.names:
            as_module = _join(base, alias.name)
            target = as_module if _file(as_module, package_dir) else base
            if _file(target, package_dir) is not None:
                modules.add(target)
                aliases[alias.asname or alias.name] = target
    return modules, aliases


def _with_parents(modules) -> set[str]:
    """The modules and the ``__init__`` of every package on their path ("" is the package itself)."""
    out = {""}
    for m in modules:
        parts = m.split(".")
        out |= {".".join(parts[:i]) for i in range(len(parts) + 1)}
    return out


def module_closure(modules, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The modules plus everything they import from the package (at any depth, lazy imports included)."""
    seen, todo = set(), list(modules)
    while todo:
        m = todo.pop()
        if m in seen or _file(m, package_dir) is None:
            continue
        seen.add(m)
        imported, _ = _imports(ast.walk(_tree(m, package_dir)), m, package_dir)
        todo.extend((imported | _with_parents({m})) - seen)
    return seen


def function_modules(module: str, function: str, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """Modules one function of `module` needs: `module` itself, the package modules its names refer to (through
    the module-level imports of `module`), its own imports, and the same for the helpers of `module` it calls."""
    tree = _tree(module, package_dir)
    _, top_aliases = _imports(tree.body, module, package_dir)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
    needed, seen, todo = {module}, set(), [function]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        node = defs[name]
        lazy, _ = _imports(ast.walk(node), module, package_dir)
        needed |= lazy
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                if sub.id in top_aliases:
                    needed.add(top_aliases[sub.id])
                elif sub.id in defs:
                    todo.append(sub.id)
    # module-level constants of `module` may come from other modules too: those bound by its top imports and
    # used outside any function are part of every function's context
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef, ast.ImportFrom, ast.Import)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in top_aliases:
                    needed.add(top_aliases[sub.id])
    return needed


def script_sources(script: str | Path, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The package source files (paths relative to the project root, sorted) that `script` runs."""
    tree = ast.parse(Path(script).read_text(encoding="utf-8"))
    start: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level:
            continue
        base = _base(node, "", package_dir)
        if base is None:
            continue
        for alias in node.names:
            as_module = _join(base, alias.name)
            if _file(as_module, package_dir):  # from timecourse_meta.S import M: all of M
                start |= module_closure({as_module}, package_dir)
            elif _file(base, package_dir):  # from timecourse_meta.M import f: what f needs, then in full
                direct = function_modules(base, alias.name, package_dir)
                start |= {base} | module_closure(direct - {base}, package_dir)
    root = package_dir.parent.parent
    return sorted(str(_file(m, package_dir).relative_to(root)) for m in _with_parents(start))
