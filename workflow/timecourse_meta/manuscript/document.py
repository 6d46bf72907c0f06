"""What manuscript/index.qmd reads, the copies of the study sets' files it shows, and the rendering step.

Conventions of index.qmd:
* figures are referenced by paths relative to the project root (`results/...`; the renderer gets the project
  root as its resource path), includes relative to the .qmd (`../results/...`: the pre-pass resolves includes
  from the including file);
* results of a study set are read through the aliases `results/manuscript/main/`,
  `results/manuscript/other/` and `results/manuscript/claims_set/` (figures/ and tables/ below them, as under
  results/figures/S/ and results/tables/S/), so that config `main_study_set` (and `data.claims_study_set`)
  choose the sets without editing the .qmd;
  `stage_assets` copies the configured sets' files there.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from timecourse_meta.core import atomic

_INCLUDE = re.compile(r"^\s*\{\{<\s*include\s+(?P<path>\"[^\"]+\"|'[^']+'|\S+?)\s*>\}\}\s*$")
_IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?(?P<path>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_ALIAS = re.compile(r"^results/manuscript/(?P<alias>main|other|claims_set)/(?P<kind>figures|tables)/(?P<rest>.+)$")


def study_set_aliases(cfg: Mapping) -> dict[str, str]:
    """{'main': main set, 'other': first other set (the main set when there is none), 'claims_set': the set the
    claims check reads (config data.claims_study_set; the main set when it is null)}."""
    main = cfg["main_study_set"]
    others = [s for s in cfg["study_sets"] if s != main]
    claims_set = (cfg.get("data") or {}).get("claims_study_set") or main
    return {"main": main, "other": others[0] if others else main, "claims_set": claims_set}


def manuscript_sources(qmd: str | Path, root: str | Path = ".") -> list[str]:
    """Files the .qmd includes or shows as figures, relative to `root`, in order of first use (fenced code and
    HTML comments are skipped; remote images are not files)."""
    qmd, root = Path(qmd), Path(root).resolve()
    text = re.sub(r"<!--.*?-->", "", qmd.read_text(encoding="utf-8"), flags=re.S)
    out: list[str] = []
    fence = None

    def add(path: Path) -> None:
        try:
            shown = path.resolve().relative_to(root).as_posix()
        except ValueError:
            shown = path.resolve().as_posix()
        if shown not in out:
            out.append(shown)

    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        inc = _INCLUDE.match(line)
        if inc:
            add(qmd.parent / inc.group("path").strip("\"'"))
            continue
        for im in _IMAGE.finditer(line):
            target = im.group("path")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue
            add(root / target if target.startswith("results/") else qmd.parent / target)
    return out


def asset_map(sources: Sequence[str], cfg: Mapping) -> dict[str, str]:
    """{alias path under results/manuscript/(main|other)/: the study set's own results file} for the sources."""
    aliases = study_set_aliases(cfg)
    out = {}
    for s in sources:
        m = _ALIAS.match(s)
        if m:
            out[s] = f"results/{m.group('kind')}/{aliases[m.group('alias')]}/{m.group('rest')}"
    return out


def stage_assets(pairs: Mapping[str | Path, str | Path]) -> None:
    """Copy each source (value) to its alias path (key), atomically."""
    for dest, src in pairs.items():
        with atomic.atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)


def run_manuscript(qmd: str | Path, variables_yml: str | Path, lineage: str | Path, bibliography: str | Path,
                   csl: str | Path, out_dir: str | Path, root: str | Path = ".",
                   formats: Sequence[str] = ("html", "docx", "pdf"), *, vocabulary) -> dict:
    """Lint the .qmd for hand-typed numbers (abstract and Results; the review's `vocabulary.lint_allow` adds
    accepted patterns), then render it with every variable's lineage, figures resolved from the project root.
    Nothing is written if either step fails."""
    from timecourse_meta.manuscript import lint
    from timecourse_meta.manuscript import render

    lint.check_qmd(qmd, allow=vocabulary.lint_allow)
    return render.render_manuscript(qmd, variables_yml, bibliography, out_dir, formats=formats, lineage=lineage,
                                    csl=csl, resource_path=[Path(root).resolve()])
