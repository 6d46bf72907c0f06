"""The tidy summary of one fit (summary.csv): one row per visit x quantity (x study), each with its ``evidence``
category and ``label`` (``evidence``). Every credible, prediction and closed-form interval has the coverage
``settings["interval_level"]`` (config ``model.interval_level``, default 0.95)."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from scipy import stats

from timecourse_meta.model.base import ModelData, arm_settings, resolved_settings
from timecourse_meta.model.evidence import (
    LABEL_MEDIAN_ONLY, Evidence, label_between_arm, label_interpolated, label_pooled, label_study, study_display,
    with_prior_check,
)
from timecourse_meta.model.intervals import clopper_pearson, t_interval
from timecourse_meta.model.posterior import flat_draws
from timecourse_meta.model.priors import resolve_priors, tau_prior_quantiles


SUMMARY_COLUMNS = [
    "outcome", "study_set", "kind", "analysis_scale", "status", "time_course", "visit_months", "quantity",
    "study_id", "median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
    "n_studies", "n_patients", "n_studies_model", "n_patients_model", "evidence", "label", "estimand", "primary",
    "note",
]


class _Rows:
    """The summary being written: the fit's context and ``add`` (one row with the columns shared by all)."""

    def __init__(self, idata, md: ModelData, settings: dict):
        self.idata, self.md, self.settings = idata, md, settings
        self.level = float(settings["interval_level"])
        self.meta = idata.constant_data.attrs if "constant_data" in idata.groups() else {}
        self.tc = self.meta.get("time_course", "none")
        self.fitted = "posterior" in idata.groups()
        self.n_all, self.p_all = ((md.obs["study_id"].nunique(), md.total_patients()) if (self.fitted and md.n_obs)
                                  else (pd.NA, pd.NA))
        self.fitted_to = f"fitted to {self.n_all} studies ({self.p_all} patients)"
        self.base = {"outcome": md.outcome, "study_set": md.study_set, "kind": md.kind,
                     "analysis_scale": md.analysis_scale, "status": md.status, "time_course": self.tc,
                     "n_studies_model": self.n_all, "n_patients_model": self.p_all}
        self.rows: list[dict] = []

    def add(self, **kw):
        r = dict(self.base)
        r.update(kw)
        self.rows.append(r)

    def check(self, evidence, label, lo, hi, plo, phi):
        return with_prior_check(evidence, label, lo, hi, plo, phi, self.level)


def _q(x: np.ndarray, level: float) -> tuple[float, float, float]:
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    qs = np.quantile(x, [0.5, lo, hi])
    return float(qs[0]), float(qs[1]), float(qs[2])


def _p_improve(x: np.ndarray, direction: str) -> float:
    if direction == "decrease":
        return float(np.mean(x < 0))
    if direction == "increase":
        return float(np.mean(x > 0))
    return float("nan")


def _count(n):
    """A patient count for the n_patients column (NA when not reported)."""
    return int(n) if np.isfinite(float(n)) else pd.NA


def _interval_words(df: float) -> str:
    return f"t interval, {df:g} df" if np.isfinite(df) else "normal interval (SE reported without n)"


def summarise(idata, model_data: ModelData, settings: dict) -> pd.DataFrame:
    """Tidy (long) summary: one row per visit x quantity (x study for study-level quantities).

    Columns: SUMMARY_COLUMNS. ``median``/``lower``/``upper``: posterior median and equal-tailed interval
    (``settings["interval_level"]``, default 0.95), or a closed-form estimate and interval, on the analysis scale.
    ``evidence`` says what the number is (``model_data.Evidence``) and ``label`` words it for a reader:
      study_estimate   one study's own estimate: change with a t interval (n - 1 df), or events/total with
                       the exact Clopper-Pearson interval; no model
      pooled           a model estimate at a visit/duration where >= 2 studies report
      interpolated     a time-course estimate at a visit where 0 or 1 study reports (model has >= 2 studies)
      prior_dominated  a model estimate whose interval is >= 90% as wide as the prior's (also tau, rho)
      between_arm      a controlled study's intervention-minus-comparator difference (``estimand``, ``primary``)
      shrunken_study   a study's estimate shrunken towards the time course
      median_only, not_estimable
    Quantities:
      continuous  delta (pooled change from baseline Delta(t); single study: the study's own change, closed
                  form), delta_percent (log scale: 100 (exp(Delta) - 1)), prediction (a new study; +
                  prediction_percent), study_delta (shrunken), study_observed (each study's own change with its
                  t interval), control_observed (a controlled study's comparator-arm change, same form), tau,
                  rho_within, rho_between (with prior median/interval), between_arm_difference (+ _percent on
                  the log scale; both estimands, ``primary`` marks the configured one), elpd_loo (one row per
                  time course; median = elpd, lower/upper = +/- 2 SE), time_course_choice (the rule's
                  decision in ``note``), reported_median (median-only rows, listed).
      binary      proportion (pooled typical proportion at a duration with >= 2 studies; else the study's
                  own events/total, exact interval), prediction, study_proportion (shrunken), study_observed
                  (each study's events/total), control_observed, tau, between_arm_difference (risk
                  difference, Newcombe interval), reported_median.
    ``p_improvement``: probability that the change is in the direction of benefit (NaN for proportions).
    ``n_studies``/``n_patients``: studies and patients at that visit; ``n_studies_model``/
    ``n_patients_model``: all studies and patients in the fitted model (NA without a model); a row reported as
    an estimate with its SE only counts no patients (NA where a study has no n), and its interval is normal
    rather than t. elpd_loo's lower/upper are +/- 2 SE whatever the interval level.

    One function on purpose: it only dispatches to the section writers below, in the order of the rows."""
    md = model_data
    out = _Rows(idata, md, resolved_settings(settings))
    if md.kind == "continuous" and md.n_obs:
        _study_rows(out)
    if out.fitted and md.kind == "continuous":
        _time_course_rows(out)
        pri = resolve_priors(md, out.settings)
        _correlation_rows(out, pri)
        if "tau" in idata.posterior:
            _add_tau(out, pri, out.fitted_to)
    elif md.kind == "binary":
        _summarise_binary(out)
    _comparator_rows(out)
    _between_arm_rows(out)
    _comparison_rows(out)
    for _, r in md.listed.iterrows():   # median-only rows: listed
        out.add(quantity="reported_median", study_id=r["study_id"], visit_months=r["time_months"],
                median=r["value"], n_studies=1, n_patients=r["n"], evidence=Evidence.MEDIAN_ONLY,
                label=LABEL_MEDIAN_ONLY, note=f"{r['arm']} arm; {r['reason']}")
    if not out.rows:
        out.add(quantity="none", n_studies=0, n_patients=0, evidence=Evidence.NOT_ESTIMABLE,
                label=f"not estimable: {md.status_reason or md.status}", note=md.status_reason)
    return _frame(out.rows)


def _frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as SUMMARY_COLUMNS with their types; every row must have a known evidence category."""
    out = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in out:
            out[c] = np.nan
    out = out[SUMMARY_COLUMNS]
    for c in ("median", "lower", "upper", "p_improvement", "prior_median", "prior_lower", "prior_upper",
              "visit_months"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in ("n_studies", "n_patients", "n_studies_model", "n_patients_model"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    out["primary"] = out["primary"].astype("boolean")
    bad = set(out["evidence"].dropna()) - set(Evidence.ALL)
    if bad or out["evidence"].isna().any():
        raise AssertionError(f"summary rows without a known evidence category: {bad or 'missing'}")
    return out.reset_index(drop=True)


def _study_rows(out: _Rows) -> None:
    """Each study's own change (study_observed); without a model (one study) also its delta rows."""
    md, level = out.md, out.level
    if md.rho_within_fixed is not None:      # already folded into A: the number only names it
        rho_hat = md.rho_within_fixed
    elif out.fitted and "rho_within" in out.idata.posterior:
        rho_hat = float(np.median(flat_draws(out.idata, "rho_within")))
    else:
        rho_hat = float(out.settings.get("within_person_correlation", 0.5))
    for r in observed_study_changes(md, rho_hat):
        lo, hi = t_interval(r["estimate"], r["se"], r["df"], level)
        pim = _p_improve_t(r["estimate"], r["se"], r["df"], md.direction)
        out.add(quantity="study_observed", study_id=r["study_id"], visit_months=r["visit_months"],
                median=r["estimate"], lower=lo, upper=hi, p_improvement=pim, n_studies=1,
                n_patients=_count(r["n"]), evidence=Evidence.STUDY_ESTIMATE,
                label=label_study(r["study_id"], r["n"]),
                note=f"{r['method']}; se={r['se']:.4g}; {_interval_words(r['df'])}")
        if out.fitted:
            continue
        quantities = {"delta": lambda x: x}     # one study: its own numbers are the result (no model)
        if md.analysis_scale == "log":
            quantities["delta_percent"] = lambda x: float(100 * np.expm1(x))
        for q, f in quantities.items():
            out.add(quantity=q, study_id=r["study_id"], visit_months=r["visit_months"], median=f(r["estimate"]),
                    lower=f(lo), upper=f(hi), p_improvement=pim, n_studies=1, n_patients=_count(r["n"]),
                    evidence=Evidence.STUDY_ESTIMATE, label=label_study(r["study_id"], r["n"]),
                    note=f"{r['method']}; {_interval_words(r['df'])}; not sampled (one study)")


def _time_course_rows(out: _Rows) -> None:
    """Per visit: the pooled change (delta, + percent), a new study's change (prediction) and the shrunken
    study changes (study_delta)."""
    idata, md, level = out.idata, out.md, out.level
    delta = flat_draws(idata, "delta")
    pred = idata.predictions["delta_new_study"].values.reshape(delta.shape)
    sdelta = flat_draws(idata, "study_delta") if "study_delta" in idata.posterior else None
    prior_delta = None
    if "prior" in idata.groups() and "delta" in idata.prior:
        pv = idata.prior["delta"].values
        prior_delta = pv.reshape((-1,) + pv.shape[2:])
    at_visit, pts = md.studies_at_visit(), md.patients_at_visit()
    for k, t in enumerate(md.post_visits):
        v = k + 1
        studies = at_visit.get(v, [])
        ns, npat = len(studies), pts.get(v, 0)
        if ns >= 2:
            ev, lab = Evidence.POOLED, label_pooled(float(t), ns, npat, out.n_all, out.p_all)
        else:
            ev, lab = Evidence.INTERPOLATED, label_interpolated(float(t), studies, npat, out.n_all, out.p_all)
        m, lo, hi = _q(delta[:, k], level)
        pm_, plo, phi = _q(prior_delta[:, k], level) if prior_delta is not None else (np.nan,) * 3
        ev, lab = out.check(ev, lab, lo, hi, plo, phi)
        common = dict(visit_months=float(t), n_studies=ns, n_patients=npat, evidence=ev, label=lab)
        out.add(quantity="delta", median=m, lower=lo, upper=hi, prior_median=pm_, prior_lower=plo,
                prior_upper=phi, p_improvement=_p_improve(delta[:, k], md.direction), note=f"time course {out.tc}",
                **common)
        if md.analysis_scale == "log":
            m, lo, hi = _q(100 * np.expm1(delta[:, k]), level)
            out.add(quantity="delta_percent", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(delta[:, k], md.direction), note=f"time course {out.tc}", **common)
        m, lo, hi = _q(pred[:, k], level)
        out.add(quantity="prediction", median=m, lower=lo, upper=hi,
                p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
        if md.analysis_scale == "log":
            m, lo, hi = _q(100 * np.expm1(pred[:, k]), level)
            out.add(quantity="prediction_percent", median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(pred[:, k], md.direction), note="a new study", **common)
        for st in studies:
            own = md.obs[(md.obs["study_id"] == st) & (md.obs["visit_idx"] == v)]
            if own.empty:  # the study counts near this visit (tolerance) but reports at another time
                continue
            x = sdelta[:, md.studies.index(st), k]
            m, lo, hi = _q(x, level)
            npat_s = _count(own["n"].max())
            who = f"{npat_s} patients" if npat_s is not pd.NA else "patients not reported"
            out.add(quantity="study_delta", study_id=st, median=m, lower=lo, upper=hi,
                    p_improvement=_p_improve(x, md.direction), visit_months=float(t), n_studies=1,
                    n_patients=npat_s, evidence=Evidence.SHRUNKEN_STUDY,
                    label=f"shrunken study estimate ({study_display(st)}, {who})", note="")


def _correlation_rows(out: _Rows, pri: dict) -> None:
    """rho_within and rho_between with their Beta priors' median and interval (a fixed rho has no row)."""
    level = out.level
    for name, cfgkey in (("rho_within", "within_study_correlation"),
                         ("rho_between", "between_visit_correlation")):
        if name not in out.idata.posterior:
            continue
        m, lo, hi = _q(flat_draws(out.idata, name), level)
        a, b = pri[cfgkey]["alpha"], pri[cfgkey]["beta"]
        pq = stats.beta.ppf([0.5, (1 - level) / 2, 1 - (1 - level) / 2], a, b)
        ev, lab = out.check(Evidence.POOLED, f"model parameter, {out.fitted_to}", lo, hi, pq[1], pq[2])
        out.add(quantity=name, median=m, lower=lo, upper=hi, prior_median=float(pq[0]),
                prior_lower=float(pq[1]), prior_upper=float(pq[2]), n_studies=out.n_all, n_patients=out.p_all,
                evidence=ev, label=lab,
                note=f"{pri[cfgkey]['structure']}; Beta({a:g}, {b:g}) prior"
                     + (f"; correlation at a lag of {pri[cfgkey]['lag_months']:g} months"
                        if pri[cfgkey]["structure"] == "ar1" else ""))


def _comparator_rows(out: _Rows) -> None:
    """Comparator arms of controlled studies: their own change (or proportion)."""
    md, short = out.md, arm_settings(out.settings)["comparator_short"] if len(out.md.control_changes) else ""
    for _, r in md.control_changes.iterrows():
        lo, hi = float(r["lower"]), float(r["upper"])
        if md.kind == "continuous" and not pd.isna(r["df"]):
            lo, hi = t_interval(float(r["estimate"]), float(r["se"]), float(r["df"]), out.level)
        pim = (_p_improve_t(float(r["estimate"]), float(r["se"]), float(r["df"]), md.direction)
               if md.kind == "continuous" else float("nan"))
        out.add(quantity="control_observed", study_id=r["study_id"], visit_months=float(r["visit_months"]),
                median=float(r["estimate"]), lower=lo, upper=hi, p_improvement=pim, n_studies=1,
                n_patients=_count(r["n"]), evidence=Evidence.STUDY_ESTIMATE,
                label=f"{short} arm: {label_study(r['study_id'], r['n'])}", note=f"{short} arm; {r['method']}")


def _between_arm_rows(out: _Rows) -> None:
    """Between-arm differences (closed form), with the arms' short names in the notes."""
    md = out.md
    if not len(md.between_arm):
        return
    arms = arm_settings(out.settings)
    ours, theirs = arms["intervention_short"], arms["comparator_short"]
    for _, r in md.between_arm.iterrows():
        primary = bool(r["primary"])
        n_i, n_c = float(r["intervention_n"]), float(r["comparator_n"])
        common = dict(visit_months=float(r["visit_months"]), study_id=r["study_id"], n_studies=1,
                      n_patients=_count(n_i + n_c), evidence=Evidence.BETWEEN_ARM,
                      label=label_between_arm(r["study_id"], n_i, n_c, r["estimand"], primary),
                      estimand=r["estimand"], primary=primary)
        if md.kind == "continuous":
            lo, hi = t_interval(float(r["estimate"]), float(r["se"]), float(r["df"]), out.level)
            pim = _p_improve_t(float(r["estimate"]), float(r["se"]), float(r["df"]), md.direction)
            how = _interval_words(float(r["df"]))
        else:
            lo, hi, pim, how = float(r["lower"]), float(r["upper"]), float("nan"), "Newcombe hybrid score interval"
        out.add(quantity="between_arm_difference", median=float(r["estimate"]), lower=float(lo), upper=float(hi),
                p_improvement=pim, note=f"{ours} minus {theirs}; {r['method']}; se={r['se']:.4g}; {how}", **common)
        if md.analysis_scale == "log" and md.kind == "continuous":
            out.add(quantity="between_arm_difference_percent", median=float(100 * np.expm1(r["estimate"])),
                    lower=float(100 * np.expm1(lo)), upper=float(100 * np.expm1(hi)), p_improvement=pim,
                    note=f"ratio of {ours} to {theirs}, as percent difference; {how} on the log scale", **common)


def _comparison_rows(out: _Rows) -> None:
    """The time-course comparison (elpd_loo per time course) and the rule's choice."""
    meta, fitted_to = out.meta, out.fitted_to
    if meta.get("loo_comparison_json"):
        cmp = pd.read_json(io.StringIO(meta["loo_comparison_json"]), orient="records")
        for _, r in cmp.iterrows():
            out.add(quantity="elpd_loo", median=float(r["elpd_loo"]), lower=float(r["elpd_loo"] - 2 * r["se"]),
                    upper=float(r["elpd_loo"] + 2 * r["se"]), n_studies=out.n_all, n_patients=out.p_all,
                    evidence=Evidence.POOLED, label=f"time-course comparison (PSIS-LOO), {fitted_to}",
                    time_course=r["time_course"],
                    note=(f"rank {int(r['rank'])}; elpd_diff {r['elpd_diff']:.3g} (se {r['dse']:.3g}); "
                          f"weight {r['weight']:.3g}; p_loo {r['p_loo']:.3g}; pareto-k warning "
                          f"{bool(r['warning'])}; converged {bool(r['converged'])}; reported: {out.tc}"))
    if out.fitted and meta.get("time_course_note"):
        out.add(quantity="time_course_choice", n_studies=out.n_all, n_patients=out.p_all, evidence=Evidence.POOLED,
                label=f"time course used for the reported results, {fitted_to}",
                note=f"{meta['time_course_note']} (time_course_rule: {out.settings.get('time_course_rule', 'loo')})")


def _summarise_binary(out: _Rows) -> None:
    """Binary rows: pooled typical proportion at durations with >= 2 studies (random-effects logit model),
    else each study's own events/total with its exact interval."""
    idata, md, level, n_all, p_all = out.idata, out.md, out.level, out.n_all, out.p_all
    pri = resolve_priors(md, out.settings)
    zq = stats.norm.ppf([0.5, (1 - level) / 2, 1 - (1 - level) / 2])
    prior_p = 1.0 / (1.0 + np.exp(-pri["mu_sd"] * zq))
    if out.fitted:
        pbin = flat_draws(idata, "p_bin")
        pnew = idata.predictions["p_new_study"].values.reshape(pbin.shape)
        pst = flat_draws(idata, "p_study")
        at_visit, pts = md.studies_at_visit(), md.patients_at_visit()
        for b, t in enumerate(md.visits):
            studies = at_visit.get(b, [])
            ns, npat = len(studies), pts.get(b, 0)
            lab = label_pooled(float(t), ns, npat, n_all, p_all, time_course=False) + "; random-effects logit model"
            m, lo, hi = _q(pbin[:, b], level)
            ev, lab = out.check(Evidence.POOLED, lab, lo, hi, prior_p[1], prior_p[2])
            common = dict(visit_months=float(t), n_studies=ns, n_patients=npat, evidence=ev, label=lab)
            out.add(quantity="proportion", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                    prior_median=float(prior_p[0]), prior_lower=float(prior_p[1]), prior_upper=float(prior_p[2]),
                    note="typical study", **common)
            m, lo, hi = _q(pnew[:, b], level)
            out.add(quantity="prediction", median=m, lower=lo, upper=hi, p_improvement=float("nan"),
                    note="a new study", **common)
            for j in np.flatnonzero(md.obs["visit_idx"].to_numpy() == b):
                st = md.obs["study_id"].iloc[j]
                m, lo, hi = _q(pst[:, j], level)
                tot = int(md.obs["total"].iloc[j])
                out.add(quantity="study_proportion", study_id=st, median=m, lower=lo, upper=hi,
                        p_improvement=float("nan"), visit_months=float(t), n_studies=1, n_patients=tot,
                        evidence=Evidence.SHRUNKEN_STUDY,
                        label=f"shrunken study estimate ({study_display(st)}, {tot} patients)", note="")
        if "tau" in idata.posterior:
            _add_tau(out, pri, f"fitted to {n_all} studies ({p_all} patients)")
    rows = md.study_rows
    for _, r in (rows.iterrows() if len(rows) else []):
        lo, hi = clopper_pearson(r["events"], r["total"], level)
        t = float(r["bin_months"])
        what = f"{int(r['events'])}/{int(r['total'])}; Clopper-Pearson exact interval"
        common = dict(study_id=r["study_id"], visit_months=t, median=float(r["events"] / r["total"]), lower=lo,
                      upper=hi, p_improvement=float("nan"), n_studies=1, n_patients=int(r["total"]),
                      evidence=Evidence.STUDY_ESTIMATE, label=label_study(r["study_id"], r["total"], t))
        out.add(quantity="study_observed", note=f"{what}; reported at {r['time_months']:g} months"
                if np.isfinite(r["time_months"]) else what, **common)
        if not bool(r["pooled"]):
            out.add(quantity="proportion", note=f"{what}; only study at this follow-up duration: no model", **common)


def _add_tau(out: _Rows, pri: dict, fitted_to: str = "") -> None:
    level = out.level
    m, lo, hi = _q(flat_draws(out.idata, "tau"), level)
    pq = tau_prior_quantiles(pri, (0.5, (1 - level) / 2, 1 - (1 - level) / 2))
    ev, lab = out.check(Evidence.POOLED, f"between-study SD, {fitted_to}", lo, hi, pq[1], pq[2])
    out.add(quantity="tau", median=m, lower=lo, upper=hi, prior_median=pq[0], prior_lower=pq[1], prior_upper=pq[2],
            n_studies=out.n_all, n_patients=out.p_all, evidence=ev, label=lab,
            note=f"{pri['tau_family']}(scale {pri['tau_scale']:g}); between-study SD at each visit")


def _p_improve_t(est, se, df, direction) -> float:
    if not (np.isfinite(se) and se > 0):
        return float("nan")
    if direction == "decrease":
        return float(stats.t.cdf(-est / se, df))
    if direction == "increase":
        return float(stats.t.sf(-est / se, df))
    return float("nan")


def observed_study_changes(md: ModelData, rho_within: float) -> list[dict]:
    """Each study's own (unshrunken) change from baseline per visit, for forest plots: a reported change
    score as it is (se = s / sqrt(n)); else follow-up minus the same cohort's baseline mean, with
    Var = v_t + v_0 - 2 Cov and Cov from the nested-subset rule at ``rho_within`` (the posterior median; without
    a model the configured within-person r; a fixed within-study correlation is already in A). ``df`` = n - 1
    for its t interval (infinite, a normal interval, for a row reported with its SE only). Where several
    cohorts report a visit, the one with the most patients is used."""
    out = []
    if md.kind != "continuous" or md.n_obs == 0:
        return out
    obs = md.obs.reset_index(drop=True)

    def S(j, k):  # one entry of A o rho_within ** lag (the full matrix would be rows x rows)
        lag = md.lag_within[j, k]
        return float(md.A[j, k] * (1.0 if lag == 0 else rho_within ** lag))

    def df_of(j):
        n = float(obs.loc[j, "n"])
        return n - 1 if np.isfinite(n) else float("inf")

    for (st, v), grp in obs[obs["visit_idx"] > 0].groupby(["study_id", "visit_idx"]):
        chg = grp[grp["measure"] == "change"]
        if len(chg):
            j = chg.sort_values("n", na_position="first").index[-1]
            out.append({"study_id": st, "visit_months": float(obs.loc[j, "time_months"]), "n": obs.loc[j, "n"],
                        "estimate": float(obs.loc[j, "y"]), "se": float(math.sqrt(S(j, j))),
                        "df": df_of(j), "method": "reported change score"})
            continue
        j = grp.sort_values("n", na_position="first").index[-1]
        base = obs[(obs["study_id"] == st) & (obs["cohort"] == obs.loc[j, "cohort"]) & (obs["visit_idx"] == 0)]
        if base.empty:
            continue
        b = base.index[0]
        var = S(j, j) + S(b, b) - 2 * S(j, b)
        out.append({"study_id": st, "visit_months": float(obs.loc[j, "time_months"]), "n": obs.loc[j, "n"],
                    "estimate": float(obs.loc[j, "y"] - obs.loc[b, "y"]), "se": float(math.sqrt(max(var, 0.0))),
                    "df": df_of(j),
                    "method": f"follow-up minus baseline (cohort {obs.loc[j, 'cohort']}, rho_within {rho_within:.2f})"})
    return out
