"""The data blocks: each study set's studies, patients and designs (`<set>.*`), the appraisal (`appraisal.*`) and the
validation's warnings in a reader's words (`data.*`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from timecourse_meta.data import linkage
from timecourse_meta.manuscript.variables.context import Collector, Context, read_csv
from timecourse_meta.manuscript.variables.words import join_words
from timecourse_meta.report.format import fmt_count


def put_set(c: Collector, ctx: Context, s: str, prefixes: list[str]) -> None:
    """Who is in study set `s`: its name, studies, patients per arm and in all, designs and report overlap."""
    ids = ctx.sets.get(s, [])
    part = ctx.studies[ctx.studies["study_id"].isin(ids)]
    rows = ctx.study_rows(ids)
    files = [ctx.files.studies]

    def put(suffix, value, **kw):
        c.put([f"{p}.{suffix}" for p in prefixes], value, **kw)

    name = ctx.set_name(s)
    put("id", s, kind="config", files=[ctx.files.config], config_key="study_sets")
    put("name", name, kind="config", files=[ctx.files.config], config_key="review.study_sets")
    put("name_capital", name[:1].upper() + name[1:], kind="config", files=[ctx.files.config],
        config_key="review.study_sets")
    spec = (ctx.cfg["review"].get("study_sets") or {}).get(s) or {}
    put("description", str(spec.get("description") or name), kind="config", files=[ctx.files.config],
        config_key="review.study_sets")
    put("n_studies", fmt_count(len(part)), kind="data", files=files, raw_rows=rows)
    for key, arm in (("n_intervention", ctx.arms.intervention), ("n_comparator", ctx.arms.comparator)):
        n = pd.to_numeric(part[arm.n_column], errors="coerce").fillna(0).sum()
        put(key, fmt_count(n), kind="data", files=files, raw_rows=rows)
    counts = linkage.set_counts(ctx.studies, ids, arms=ctx.arms)
    put("n_patients", fmt_count(counts["n_patients_unique"]), kind="data", files=files, raw_rows=rows)
    put("n_unique_patients", fmt_count(counts["n_patients_unique"]), kind="data", files=files, raw_rows=rows)
    put("n_groups", fmt_count(counts["n_studies"]), kind="data", files=files, raw_rows=rows)
    put("n_reports", fmt_count(counts["n_reports"]), kind="data", files=files, raw_rows=rows)
    put("overlap_sentence", _overlap_sentence(ctx, ids), kind="data", files=files, raw_rows=rows)
    for design in ctx.vocabulary.designs:
        sub = part[part["design"] == design]
        put(f"n_{design}", fmt_count(len(sub)), kind="data", files=files,
            raw_rows=ctx.study_rows(sub["study_id"].tolist()))
    put("designs", _design_words(part, ctx.vocabulary), kind="data", files=files, raw_rows=rows)
    put("study_list", join_words([ctx.labels[i] for i in part["study_id"]]) if len(part) else "no studies",
        kind="data", files=files, raw_rows=rows)


def _overlap_sentence(ctx: Context, ids) -> str:
    groups = linkage.study_groups(ctx.studies, ids, arms=ctx.arms)
    shared = groups[groups["n_reports"] > 1]
    if shared.empty:
        return "no two reports of this set describe the same patients"
    return "; ".join(
        f"the {fmt_count(int(g['n_reports']))} reports of the {g['label']} programme ({g['reports']}) were "
        f"counted as one patient group of {fmt_count(int(g['patients']))} patients, its largest report"
        for g in shared.to_dict("records"))


def _design_words(part: pd.DataFrame, vocabulary) -> str:
    """"1 randomised controlled trial and 3 single-arm studies": most frequent design first (ties in the
    vocabulary's order), in the vocabulary's sentence words."""
    words = []
    order = {d: i for i, d in enumerate(vocabulary.designs)}
    designs = part["design"].value_counts()
    for design, count in sorted(designs.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0])):
        one, many = vocabulary.design_words(design)
        words.append(f"{fmt_count(count)} {one if count == 1 else many}")
    return join_words(words) if words else "no studies"


def validation_warning_words(message: str, dictionary: Mapping, sheets: Mapping[str, str]) -> str:
    """A validation warning as a reader reads it: outcome ids as their labels, sheet paths as sheet names."""
    text = re.sub(r" \(config [\w.]+\)", " in the configuration", str(message))
    for path, name in sheets.items():
        text = text.replace(path, name)
    for key in sorted(dictionary, key=len, reverse=True):
        text = text.replace(f"'{key}'", dictionary[key].label)
    return text


def put_warnings(c: Collector, ctx: Context) -> None:
    """The validation's warnings (plausibility a real study can legitimately break), for the data section."""
    path = ctx.files.warnings
    frame = read_csv(path, dtype=str, keep_default_na=False)
    frame = frame if frame is not None else pd.DataFrame(columns=["message"])
    raw_dir = str(ctx.cfg["data"].get("raw_dir") or "")
    sheets = {f"{raw_dir}/{n}.csv": f"the {n} sheet" for n in ("studies", "outcomes", "appraisal")} if raw_dir else {}
    words = [validation_warning_words(m, ctx.dictionary, sheets) for m in frame["message"]]
    note = "warnings of the validation step (each names its file, sheet, row and column)"
    c.put("data.n_warnings", fmt_count(len(words)), kind="derived", files=[path], note=note)
    c.put("data.warnings", "; ".join(words) if words else "none", kind="derived", files=[path], note=note)


def put_appraisal(c: Collector, ctx: Context) -> None:
    """Studies and items appraised, items not judged (judgements of concern `unclear` in the vocabulary) and the
    checklists used, by their names in the vocabulary."""
    a = ctx.appraisal
    rows = [{"row_id": f"appraisal:{r['study_id']}:{r['item_id']}", "source_url": r.get("source_url", ""),
             "locator": r.get("locator", "")} for r in a.to_dict("records")]
    files = [ctx.files.appraisal]
    c.put("appraisal.n_studies", fmt_count(a["study_id"].nunique()), kind="data", files=files, raw_rows=rows)
    c.put("appraisal.n_items", fmt_count(len(a)), kind="data", files=files, raw_rows=rows)
    not_judged = [code for code, j in ctx.vocabulary.judgements.items() if j.concern == "unclear"]
    unclear = a[a["judgement"].isin(not_judged)]
    c.put("appraisal.n_not_judged", fmt_count(len(unclear)), kind="data", files=[*files, ctx.files.vocabulary],
          raw_rows=[r for r in rows if r["row_id"] in {f"appraisal:{x['study_id']}:{x['item_id']}"
                                                       for x in unclear.to_dict("records")}])
    names = [ctx.vocabulary.checklists.get(x, x) for x in dict.fromkeys(a["checklist"])]
    c.put("appraisal.checklists", join_words(names) if names else "none", kind="data",
          files=[*files, ctx.files.vocabulary], raw_rows=rows)
