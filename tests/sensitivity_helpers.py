"""Constructed sensitivity results for the report tests: variants.csv built from a real-shaped model summary
(tests/fixtures/results/models/all_candidates/<outcome>/summary.csv) by copying the main rows per variant and
setting the pooled quantity at the key visit to a chosen estimate, interval and P(improvement)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from timecourse_meta.model.summary import SUMMARY_COLUMNS
from timecourse_meta.report.sensitivity import VARIANT_COLUMNS

RESULTS = Path(__file__).parent / "fixtures" / "results"


def main_summary(outcome: str = "sledai", study_set: str = "all_candidates") -> pd.DataFrame:
    frame = pd.read_csv(RESULTS / "models" / study_set / outcome / "summary.csv", dtype={"study_id": str})
    return frame.reindex(columns=SUMMARY_COLUMNS)


def variant_rows(summary: pd.DataFrame, variant: str, group: str, label: str, status: str = "fitted",
                 note: str = "", at: float | None = None, median=None, lower=None, upper=None, p=None,
                 n_studies=None) -> pd.DataFrame:
    """The summary's rows as one variant's; with `at`, the pooled quantity's row at that visit changed."""
    rows = summary.copy()
    quantity = "proportion" if rows["kind"].iloc[0] == "binary" else "delta"
    if at is not None:
        hit = (rows["quantity"] == quantity) & rows["study_id"].isna() & np.isclose(
            rows["visit_months"].astype(float), at)
        assert hit.any(), f"no pooled {quantity} row at {at}"
        for column, value in (("median", median), ("lower", lower), ("upper", upper), ("p_improvement", p),
                              ("n_studies", n_studies)):
            if value is not None:
                rows.loc[hit, column] = value
    if status in ("failed_gate", "not_applicable"):
        rows = rows.iloc[:1].assign(quantity="none", median=np.nan, lower=np.nan, upper=np.nan,
                                    p_improvement=np.nan, visit_months=np.nan)
    head = pd.DataFrame({"variant": variant, "variant_group": group, "variant_label": label,
                         "variant_status": status, "variant_note": note}, index=rows.index)
    return pd.concat([head, rows], axis=1)[VARIANT_COLUMNS + SUMMARY_COLUMNS]


def variants(summary: pd.DataFrame, specs: list[dict]) -> pd.DataFrame:
    """main (the summary as it is) then one variant per spec (keyword arguments of `variant_rows`)."""
    parts = [variant_rows(summary, "main", "main", "Main analysis")]
    parts += [variant_rows(summary, **s) for s in specs]
    return pd.concat(parts, ignore_index=True)


def not_applicable(outcome: str, study_set: str, reason: str) -> pd.DataFrame:
    row = {c: np.nan for c in SUMMARY_COLUMNS}
    row.update(outcome=outcome, study_set=study_set, quantity="none", evidence="not_estimable")
    head = {"variant": "main", "variant_group": "main", "variant_label": "Main analysis",
            "variant_status": "not_applicable", "variant_note": reason}
    return pd.DataFrame([{**head, **row}])[VARIANT_COLUMNS + SUMMARY_COLUMNS]


def power_scaling(rows: list[tuple]) -> pd.DataFrame:
    """(parameter, visit_months, prior_sensitivity, likelihood_sensitivity, diagnosis) per row."""
    return pd.DataFrame([{"parameter": p, "visit_months": v, "prior_sensitivity": ps, "likelihood_sensitivity": ls,
                          "threshold": 0.05, "diagnosis": d} for p, v, ps, ls, d in rows])


# a robust-looking SLEDAI example with one of each kind of row (used by the figure test and the fixture files)
SLEDAI_SPECS = [
    dict(variant="tau_half_normal_x0.5", group="prior", label="\u03c4 prior half-normal, half the scale", at=6.0,
         median=-7.9, lower=-9.8, upper=-5.9, p=0.9995),
    dict(variant="tau_half_cauchy", group="prior", label="\u03c4 prior half-Cauchy", at=6.0,
         median=-7.6, lower=-11.2, upper=-3.4, p=0.998),
    dict(variant="rho_low", group="correlation", label="within-person correlation prior low", at=6.0,
         median=-7.7, lower=-10.3, upper=-4.9, p=0.999),
    dict(variant="emax", group="time_course", label="Emax time course", status="failed_gate",
         note="R-hat 1.04 > 1.01"),
    dict(variant="loo_deng2017", group="data", label="without Deng 2017", at=6.0, median=-7.4, lower=-12.0,
         upper=-2.1, p=0.981, n_studies=1),
    dict(variant="loo_li2016", group="data", label="without Li 2016", at=6.0, median=-3.1, lower=-8.2,
         upper=1.9, p=0.81, n_studies=1),
    dict(variant="no_secondary", group="data", label="only rows the study itself reported",
         status="same_as_main", note="no secondary-source rows"),
]
