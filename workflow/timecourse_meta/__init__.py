"""Bayesian time-course meta-analysis: from data-extraction sheets to a reproducible manuscript."""


__version__ = "0.1.0"


def schema_path(name: str):
    """Path of a file in workflow/schemas (the package's sibling), so rules and tests share one copy."""
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "schemas" / name
