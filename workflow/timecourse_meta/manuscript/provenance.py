"""Facts for the manuscript's reproducibility appendix: software versions, seeds, input file hashes, git commit.

`provenance(...)` collects them into a plain mapping; `provenance_markdown(facts)` renders it as Markdown
(pipe tables with `{#tbl-...}` captions, for `{{< include >}}` in manuscript/index.qmd); `write_provenance`
writes the Markdown and a JSON copy, each atomically.

* Packages: every exact pin (`name==version`) of pyproject.toml (dependencies and optional dependencies), with
  the version installed (importlib.metadata) and whether it matches the pin; plus Python, Pandoc (the binary
  the renderer uses) and the platform.
* Seeds: the configured base seed and the seed of each model job, derived from it by
  `models.outcome_seed(base, outcome)` as the fit step does (the same in every study set).
* Input files: SHA-256 of each file the workflow reads from outside `results/` (raw extraction sheets, config,
  outcome dictionary, claims table), with its size.
* Git: `git rev-parse HEAD` (or "unknown" outside a repository / without git), and whether tracked files had
  uncommitted changes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import platform
import re
import subprocess
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from timecourse_meta.core import atomic
from timecourse_meta.core import config as config_mod
from timecourse_meta.report.format import fmt_count

UNKNOWN = "unknown"
_PIN = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*(?P<version>[^;\s]+)")


def pinned_packages(pyproject: str | Path) -> list[tuple[str, str, str]]:
    """(name, pinned version, group) for every `name==version` requirement of pyproject.toml."""
    data = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))
    project = data.get("project", {})
    groups = [("runtime", project.get("dependencies", []))]
    groups += [(name, reqs) for name, reqs in sorted(project.get("optional-dependencies", {}).items())]
    out = []
    for group, reqs in groups:
        for req in reqs:
            m = _PIN.match(req)
            if m:
                out.append((m.group("name"), m.group("version"), group))
    return out


def installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_versions(pyproject: str | Path, groups: Sequence[str] = ("runtime",)) -> list[dict]:
    """One record per pinned package of ``groups``: name, pinned, installed, matches, group. By default the
    runtime dependencies only, the packages that compute the results: installing an extra (the test or
    cluster tools) changes no result, so it must not rerun the appendix and the manuscript."""
    rows = []
    for name, pinned, group in pinned_packages(pyproject):
        if group not in groups:
            continue
        inst = installed_version(name)
        rows.append({"name": name, "pinned": pinned, "installed": inst, "matches": inst == pinned, "group": group})
    return rows


def pandoc_version() -> str:
    try:
        import pypandoc

        return str(pypandoc.get_pandoc_version())
    except Exception:  # noqa: BLE001 - the appendix says so rather than failing
        return UNKNOWN


def tool_versions() -> list[dict]:
    return [
        {"name": "Python", "version": platform.python_version()},
        {"name": "Pandoc (from pypandoc-binary)", "version": pandoc_version()},
        {"name": "Platform", "version": f"{platform.system()} {platform.machine()}"},
    ]


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(paths: Iterable[str | Path], root: str | Path = ".") -> list[dict]:
    """path (relative to root), bytes and SHA-256 of each file, in the order given (duplicates dropped)."""
    root = Path(root).resolve()
    rows, seen = [], set()
    for p in paths:
        path = Path(p)
        full = path if path.is_absolute() else root / path
        try:
            shown = full.resolve().relative_to(root).as_posix()
        except ValueError:
            shown = full.as_posix()
        if shown in seen:
            continue
        seen.add(shown)
        rows.append({"path": shown, "bytes": full.stat().st_size, "sha256": sha256(full)})
    return rows


def git_commit(root: str | Path = ".") -> dict:
    """{'commit': full hash or 'unknown', 'dirty': True/False/None (tracked files changed since the commit)}."""
    def run(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)

    try:
        head = run("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {"commit": UNKNOWN, "dirty": None}
    commit = head.stdout.strip()
    if head.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        return {"commit": UNKNOWN, "dirty": None}
    try:
        status = run("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": commit, "dirty": dirty}


def model_seeds(cfg: Mapping) -> list[dict]:
    """The seed of each model job (study set x outcome), as the fit step derives it."""
    from timecourse_meta.model.sample import outcome_seed  # heavy import, only here

    base = int(cfg["sampling"]["seed"])
    return [{"study_set": s, "outcome": o, "seed": outcome_seed(base, o)}
            for s in cfg["study_sets"] for o in list(cfg["outcomes"]) + list(cfg["binary_outcomes"])]


def provenance(config_yml: str | Path, pyproject: str | Path, inputs: Sequence[str | Path], root: str | Path = ".",
               git: Mapping | None = None) -> dict:
    """Every fact of the appendix. `git`: a precomputed `git_commit()` result (the Snakemake rule passes it as a
    param so that a new commit reruns the step); None computes it here."""
    cfg = config_mod.load(config_yml)
    return {
        "packages": package_versions(pyproject),
        "tools": tool_versions(),
        "base_seed": int(cfg["sampling"]["seed"]),
        "seeds": model_seeds(cfg),
        "inputs": file_hashes(inputs, root),
        "git": dict(git) if git is not None else git_commit(root),
    }


def _table(header: Sequence[str], rows: Iterable[Sequence], align: Sequence[str] | None = None) -> str:
    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    align = align or ["l"] * len(header)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def provenance_markdown(facts: Mapping) -> str:
    """The appendix as Markdown: a git line, then tables of packages, tools, input files and seeds, each with a
    caption carrying a cross-reference id (tbl-software, tbl-inputs, tbl-seeds)."""
    g = facts["git"]
    commit = g.get("commit", UNKNOWN)
    if commit == UNKNOWN:
        git_text = "The git commit of the workflow could not be determined (not a git checkout, or git missing)."
    else:
        state = {True: " The working tree had uncommitted changes to tracked files when the results were built.",
                 False: " The tracked files matched that commit.", None: ""}[g.get("dirty")]
        git_text = f"Workflow source: git commit `{commit}`.{state}"
    parts = [git_text, ""]
    pk = facts["packages"]
    mismatched = [p["name"] for p in pk if not p["matches"]]
    rows = [(p["name"], p["pinned"], p["installed"], "yes" if p["matches"] else "**no**") for p in pk]
    rows += [(t["name"], "", t["version"], "") for t in facts["tools"]]
    parts.append(_table(["Software", "Pinned (pyproject.toml)", "Installed", "Matches pin"], rows))
    caption = "Software versions used to build the results"
    if mismatched:
        caption += f" (installed version differs from the pin for: {', '.join(mismatched)})"
    parts.append(f": {caption}. {{#tbl-software}}\n")
    rows = [(f"`{i['path']}`", fmt_count(i["bytes"]), f"`{i['sha256']}`") for i in facts["inputs"]]
    parts.append(_table(["Input file", "Bytes", "SHA-256"], rows, ["l", "r", "l"]))
    parts.append(": Input files read by the workflow, with their SHA-256 hashes. {#tbl-inputs}\n")
    rows = [(s["study_set"], s["outcome"], str(s["seed"])) for s in facts["seeds"]]
    parts.append(_table(["Study set", "Outcome", "Seed"], rows, ["l", "l", "r"]))
    parts.append(f": Random seeds of the model jobs, each derived from the base seed {facts['base_seed']} and the "
                 "outcome (the same in every study set). {#tbl-seeds}\n")
    return "\n".join(parts)


def write_provenance(config_yml: str | Path, pyproject: str | Path, inputs: Sequence[str | Path], out_md: str | Path,
                     out_json: str | Path | None = None, root: str | Path = ".", git: Mapping | None = None) -> dict:
    facts = provenance(config_yml, pyproject, inputs, root, git)
    atomic.write_text(out_md, provenance_markdown(facts))
    if out_json is not None:
        atomic.write_text(out_json, json.dumps(facts, indent=1, sort_keys=True) + "\n")
    return facts


__all__ = ["pinned_packages", "installed_version", "package_versions", "pandoc_version", "tool_versions", "sha256",
           "file_hashes", "git_commit", "model_seeds", "provenance", "provenance_markdown", "write_provenance"]
