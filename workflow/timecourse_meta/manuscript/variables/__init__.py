"""The manuscript's numbers: every `{{< var key >}}` of manuscript/index.qmd, built from the results files, with
the lineage of each (results file -> harmonised rows -> raw extraction rows with their source URL and locator).

`build_variables(config_yml, results_dir, root)` reads the resolved config and the results files listed by
`results_files` (the Snakemake rule's inputs are exactly that list) and returns a `Variables` object: `values`
(nested mapping, as Quarto's `_variables.yml`), `lineage` (flat key -> record) and `priors` (the prior table).
`write_variables` writes `_variables.yml`, `lineage.json` and `priors.md`, each atomically.

Modules: `layout` (which files), `context` (the results read once, the collector of keys), `words` (phrases and
formats), one per block (`data`, `outcomes`, `comparison`, `checks`, `methods`, `selection`, `sensitivity`), and `build` (the blocks in
order, and the writer). The manuscript step itself (what index.qmd reads, the copies of the study sets' files,
lint and render) is `timecourse_meta.manuscript.document`; its names are re-exported here for the workflow.

Every number is formatted by `timecourse_meta.report.format` (decimals from `sig_digits(unit)`; probabilities
never 0 or 1; Unicode minus). Thin evidence gives words, never a blank or a crash: "not estimable (single study)",
"no study in this set reports a change from baseline", "not analysed (no model results)". The review's arms and
study-set names come from config `review` (`timecourse_meta.core.review`), checklist names and judgements from
the review's vocabulary file.

Keys (S = a study set of config `study_sets`; the blocks `main`, `other` and `claims_set` repeat the block of the
main study set, of the first other study set and of the set the claims check reads (config
`data.claims_study_set`, else the main set), so index.qmd does not name a set; `other` is the main set when only
one set is configured):

* `main.*`, `other.*`, `claims_set.*`, `sets.S.*`
  - `id`, `name` (config `review.study_sets.S.name`), `n_studies`, `n_patients` (unique patients, both arms),
    `n_intervention`, `n_comparator` (the arms' `n_column` summed), `n_rct`, `n_single_arm`, `n_case_series`,
    `n_cohort` and `n_<code>` for every other design code of the vocabulary, `designs` (e.g. "1 randomised controlled trial, 3 single-arm studies"), `study_list`
    ("Author 2014, Author 2022, ... and Author 2017")
  - `n_outcomes` (continuous outcomes configured), `n_outcomes_data` (with a change from baseline at the key visit),
    `n_outcomes_pooled` (>= 2 studies at the key visit), `n_outcomes_single` (1 study), `n_outcomes_none`
  - `diag.n_models`, `diag.n_fitted`, `diag.n_passed`, `diag.n_not_fitted`, `diag.max_rhat`, `diag.min_ess_bulk`,
    `diag.min_ess_tail`, `diag.divergences`, `diag.min_bfmi`
  - `claims.n`, `claims.supported`, `claims.contradicted`, `claims.not_assessable`
  - `description` (config `review.study_sets.S.description`)
  - `safety.{n_studies, n_rows, n_related, n_not_related, n_not_stated, n_pooled_rows, studies}`: the safety
    table's counts (config `safety`); the pooled incidence is the binary outcome's own block
  - `rct.*`: the first controlled study: `n_studies`, `study`, `design`, `n_intervention`, `n_comparator`, and per
    outcome O `rct.O.{primary, primary_estimand, follow_up_means, change_scores, intervention, comparator,
    visit_text, summary}`; `n_outcomes`, `n_clear`, `clear_list`, `conclusion`
  - per continuous outcome O (config `outcomes`), at its key visit (the forest plot's and summary-of-findings
    table's visit, `results/tables/S/key_visits/O.csv`; numbers identical to that table's, through
    `figure_data.finding`): `O.label`, `O.unit` (display unit; "%" = percent change of the mean for log-scale
    outcomes), `O.visit`, `O.visit_text`, `O.n_studies`, `O.n_patients`, `O.studies_total` (studies with
    poolable rows at any visit), `O.status`, `O.change` (pooled: posterior median and 95% CrI; one study: its own
    change and 95% CI), `O.prediction` (95% prediction interval for a new study), `O.p_improvement`, `O.tau`
    (between-study SD with its 95% CrI), `O.tau_note`, `O.summary` (one honest phrase with all of these)
  - per binary outcome O (config `binary_outcomes`), at the visit with most studies (ties: the later):
    `O.label`, `O.visit`, `O.visit_text`, `O.n_studies`, `O.n_patients`, `O.status`, `O.proportion`,
    `O.prediction`, `O.tau` (logit scale), `O.summary`
  - `prisma.*` (`selection.put_prisma`, from `results/tables/S/prisma_counts.csv`): `box.<box id, dots as
    underscores>` for every box of the PRISMA 2020 flow, the totals over the searches `n_records`,
    `n_reports_collated`, `n_studies_assessed`, `n_excluded`, `n_included`, `n_included_reports`, `n_searches`,
    `records_by_type`, `excluded_reasons` and `sentence` (the flow in words)
* `update.*` (`selection.put_update`, from `results/update/what_changed.md` and `.csv`): `status` (none,
  unchanged, changed), `sentence`, `n_changes`, `n_studies_added`, `n_estimates_moved`, `n_conclusions_changed`
* `main.sensitivity.*`, `other.sensitivity.*`, `sets.S.sensitivity.*` and `methods.sensitivity.*`: the
  sensitivity verdicts and the variants run (`variables.sensitivity`)
* `methods.*` (from the resolved config, so editing config.yaml edits the methods section): `main_set`,
  `main_set_name`, `other_set_name`, `study_sets`, `n_study_sets`, `r`, `r_sensitivity`, `visit_grid`,
  `time_course`, `time_course_alternatives`, `time_course_description`, `loo` (a sentence),
  `rw_reference_months`, `within_structure`, `within_prior`,
  `between_structure`, `between_prior`, `tau_family`, `chains`, `draws`, `tune`, `total_draws`, `target_accept`,
  `seed`, `max_rhat`, `min_ess_bulk`, `min_ess_tail`, `max_divergences`, `min_bfmi`, `n_outcomes`,
  `n_binary_outcomes`, and `priors.O.{delta_sd,step_sd,tau_scale,baseline_sd,text}` (continuous) /
  `priors.O.{mu_sd,tau_scale,text}` (binary)
* `appraisal.*`: `n_studies`, `n_items`, `n_not_judged` (judgements of concern "unclear" in the vocabulary),
  `checklists`
* `data.*`: `n_warnings`, `warnings` (the validation's warnings in a reader's words)

Lineage record (the renderer's lineage loader reads it): `results_file` (list of paths relative to the project
root), `raw_rows` (list of {row_id, source_url, locator}; row ids of the outcomes sheet, `studies:<study_id>` for
the studies sheet, `appraisal:<study_id>:<item_id>` for the appraisal sheet), `kind` (`data`: computed from
extracted rows; `model`: a model quantity (its raw rows: every row the model of that outcome and set uses);
`derived`: a count of outcomes; `config`; `diagnostics`; `claims`), and `config_key` for config values.
"""

from timecourse_meta.manuscript.document import (asset_map, manuscript_sources, run_manuscript, stage_assets,
                                                 study_set_aliases)
from timecourse_meta.manuscript.variables.build import HEADER, build_variables, write_variables
from timecourse_meta.manuscript.variables.context import Variables, VariablesError
from timecourse_meta.manuscript.variables.data import validation_warning_words
from timecourse_meta.manuscript.variables.layout import ResultsFiles, results_files, variables_inputs
from timecourse_meta.manuscript.variables.methods import prior_values
from timecourse_meta.manuscript.variables.words import (fmt_change, fmt_config_number, fmt_range, join_words,
                                                        unit_digits, visit_number, visit_text)

__all__ = ["HEADER", "ResultsFiles", "Variables", "VariablesError", "asset_map", "build_variables", "fmt_change",
           "fmt_config_number", "fmt_range", "join_words", "manuscript_sources", "prior_values", "results_files",
           "run_manuscript", "stage_assets", "study_set_aliases", "unit_digits", "validation_warning_words",
           "variables_inputs", "visit_number", "visit_text", "write_variables"]
