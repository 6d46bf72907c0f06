"""What each per-outcome job reads, computed when the workflow is parsed, so that Snakemake reruns only it.

Why: Snakemake has no early cut-off inside one invocation. When `validate` or `harmonise` runs, every job that
depends on their outputs is scheduled too ("input files updated by another job"), whatever the new content, so one
changed cell refitted every outcome. Marking the shared tables `ancient()` does not help: Snakemake then skips
the depending job without looking at its own params (dag.py `update_needrun` masks everything downstream of a job
that must run), so a real change would be missed until the next invocation.

So the files many jobs read have no edge to a job that runs on every change: the rules `validated_sheet` (the
typed copy of one sheet), `outcome_slice` and `model_studies` receive the exact text of their file as a param and
only write it. Snakemake's params trigger (on
by default) reruns such a job exactly when its text differs from the one recorded with its file, so the file is
rewritten only when its content changes, and the jobs reading it (harmonise, the fits, the figures) follow by
plain file dependencies; a one-cell change to the outcomes sheet rewrites neither the studies nor the appraisal. The texts come
from the steps' own functions (data.outputs: validated_texts, harmonised_texts, outcome_slice_text) run on the raw
sheets in memory (~1 s): nothing is written when the workflow is parsed, and a dry run stays a dry run.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from timecourse_meta.core import review
from timecourse_meta.core.errors import EngineError
from timecourse_meta.data import outputs

# The engine's columns of the studies sheet that describe a study for readers (tables, manuscript) and that no
# model reads; a change to one of them refits nothing. The review's own study fields (vocabulary study_fields)
# are descriptive too: the engine reads none of them. Every other column is given to the fits, so a column
# added later errs on the side of a rerun. tests/test_incremental.py checks the fit code names none.
DESCRIPTIVE_STUDY_COLUMNS = ("journal", "volume_pages", "doi", "design_detail", "population", "follow_up_months",
                             "source_url", "locator", "notes", "record_type", "search")


class InputsUnavailable(EngineError, RuntimeError):
    """The raw sheets could not be validated or harmonised when the workflow was parsed."""


@dataclass
class ModelInputs:
    """The texts of the typed sheets (by name), of each outcome's analysis-table slice and of the studies' model
    columns. `error` says why they could not be computed (an input problem, with file, row and column)."""
    validated: dict[str, str] = field(default_factory=dict)
    slices: dict[str, str] = field(default_factory=dict)
    model_studies: str | None = None
    error: str | None = None

    def slice(self, outcome: str) -> str | None:
        return self.slices.get(outcome)

    def sheet(self, name: str) -> str | None:
        return self.validated.get(name)


def model_studies_text(studies: pd.DataFrame, review_fields: Iterable[str] = ()) -> str:
    """The validated studies, in their order (a fit lists studies in it), without the descriptive columns (the
    engine's and the review's `review_fields`) and the sheet row number (which moves when a row is inserted
    above): what a fit reads, and no reader-only edit."""
    drop = [c for c in (*DESCRIPTIVE_STUDY_COLUMNS, *review_fields, "source_row") if c in studies.columns]
    return studies.drop(columns=drop).to_csv(index=False, lineterminator="\n")


def compute(cfg: dict, outcomes: list[str]) -> ModelInputs:
    """The texts of the typed sheets, each outcome's slice and the model studies, from the raw sheets in `cfg`.

    A failure is recorded, not raised: the workflow must still build its DAG so that the validate (or harmonise)
    job reports the problem with file, row and column; the jobs given no text fail naming it."""
    try:
        csvs, _, _ = outputs.validated_texts(cfg)
        table_text, _ = outputs.harmonised_texts(outputs.harmonise_settings(cfg),
                                                  outputs.read_validated(texts=csvs))
    except Exception as exc:  # noqa: BLE001 - reported in full by the job that runs the same step
        return ModelInputs(error=f"{type(exc).__name__}: {exc}")
    table = pd.read_csv(io.StringIO(table_text))  # read back as the outcome_slice job once read the file
    studies = pd.read_csv(io.StringIO(csvs["studies"]), dtype=str, keep_default_na=False)
    return ModelInputs(validated=csvs, slices={o: outputs.outcome_slice_text(table, o) for o in outcomes},
                       model_studies=model_studies_text(studies, review.vocabulary(cfg).study_fields))


def write_given(text: str | None, out: str, error: str | None, what: str) -> None:
    """Write the text a rule received as a param (atomically); none means the inputs did not validate."""
    from timecourse_meta.core import atomic

    if text is None:
        raise InputsUnavailable(f"{out}: {what} could not be computed from the raw sheets ({error}); the validate "
                                "job's log names the problem")
    atomic.write_text(out, text)
