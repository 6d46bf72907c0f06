"""Which source files of this package a rule's script runs, so that Snakemake reruns a step when its code
changes (Snakemake itself only tracks the script file, not the modules it imports).

Found by reading the code (``ast``), not by importing it: a script's ``from msct_review.M import f`` pulls in
module M's module-level imports and, within M, only what function ``f`` uses (the names it refers to, the
helpers of M it calls, and its own function-level imports); ``from msct_review import M`` pulls in all of M.
Modules reached that way count in full, with everything they import, module-level or inside functions.
A change to ``pipeline.run_validate`` therefore reruns validation but not the model fits, while a change to
``models.py`` reruns every fit.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "msct_review"
PACKAGE_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _tree(module: str, package_dir: Path) -> ast.Module:
    return ast.parse((package_dir / f"{module}.py").read_text(encoding="utf-8"))


def _is_module(name: str, package_dir: Path) -> bool:
    return (package_dir / f"{name}.py").is_file()


def _relative_imports(nodes, package_dir: Path) -> tuple[set[str], dict[str, str]]:
    """Package modules imported by the ImportFrom nodes among `nodes`, and alias -> module for the names
    those imports bind (``from . import harmonise as h`` binds h; ``from .tables import fmt`` binds fmt)."""
    modules, aliases = set(), {}
    for node in nodes:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 or node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
            base = node.module or ""
            if base.startswith(PACKAGE):
                base = base[len(PACKAGE):].lstrip(".")
            for alias in node.names:
                bound = alias.asname or alias.name
                if base:
                    target = base.split(".")[0]
                elif _is_module(alias.name, package_dir):
                    target = alias.name
                else:
                    target = "__init__"
                if _is_module(target, package_dir):
                    modules.add(target)
                    aliases[bound] = target
    return modules, aliases


def module_closure(modules, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The modules plus everything they import from the package (at any depth, lazy imports included)."""
    seen, todo = set(), list(modules)
    while todo:
        m = todo.pop()
        if m in seen or not _is_module(m, package_dir):
            continue
        seen.add(m)
        imported, _ = _relative_imports(ast.walk(_tree(m, package_dir)), package_dir)
        todo.extend(imported - seen)
    return seen


def function_modules(module: str, function: str, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """Modules one function of `module` needs: `module` itself, the package modules its names refer to (through
    the module-level imports of `module`), its own imports, and the same for the helpers of `module` it calls."""
    tree = _tree(module, package_dir)
    _, top_aliases = _relative_imports(tree.body, package_dir)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
    needed, seen, todo = {module}, set(), [function]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        node = defs[name]
        lazy, _ = _relative_imports(ast.walk(node), package_dir)
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
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(PACKAGE):
            continue
        sub = node.module[len(PACKAGE):].lstrip(".")
        if sub:  # from msct_review.M import f, g: M counts with what f and g need; what they reach, in full
            if _is_module(sub, package_dir):
                direct = set().union(*(function_modules(sub, a.name, package_dir) for a in node.names))
                start |= {sub} | module_closure(direct - {sub}, package_dir)
        else:  # from msct_review import M: all of M
            start |= module_closure({a.name for a in node.names}, package_dir)
    root = package_dir.parent.parent
    return sorted(str((package_dir / f"{m}.py").relative_to(root)) for m in start | {"__init__"})
