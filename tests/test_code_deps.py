"""A rule reruns when the package code its script runs changes: the script's package dependencies."""

from pathlib import Path

from msct_review import code_deps

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def names(paths):
    return {Path(p).stem for p in paths}


def test_function_level_dependencies_in_a_small_package(tmp_path):
    pkg = tmp_path / "workflow" / "msct_review"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "steps.py").write_text(
        "from . import fitting as fit_mod\n"
        "from .plotting import draw\n"
        "def run_fit():\n    return _helper()\n"
        "def _helper():\n    return fit_mod.go()\n"
        "def run_plot():\n    from . import render\n    return draw()\n")
    (pkg / "fitting.py").write_text("from . import maths\ndef go():\n    return maths\n")
    (pkg / "maths.py").write_text("")
    (pkg / "plotting.py").write_text("def draw():\n    return 1\n")
    (pkg / "render.py").write_text("")
    script = tmp_path / "fit.py"
    script.write_text("from msct_review.steps import run_fit\nrun_fit()\n")
    # run_fit -> _helper -> fit_mod (fitting) -> maths; not plotting or render
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "fitting", "maths"}
    assert code_deps.script_sources(script, pkg)[0].startswith("workflow/msct_review/")
    script.write_text("from msct_review.steps import run_plot\n")
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "plotting", "render"}
    script.write_text("from msct_review import steps\n")  # the whole module
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "fitting", "maths", "plotting",
                                                             "render"}


def test_the_workflow_scripts_depend_on_what_they_run():
    fit = names(code_deps.script_sources(SCRIPTS / "fit_model.py"))
    assert {"pipeline", "models", "model_data", "diagnostics"} <= fit
    assert not {"plots", "render", "variables", "figure_data"} & fit
    forest = names(code_deps.script_sources(SCRIPTS / "forest.py"))
    assert {"report_steps", "plots", "figure_data", "tables"} <= forest
    assert not {"models", "render"} & forest
    manuscript = names(code_deps.script_sources(SCRIPTS / "manuscript.py"))
    assert {"render", "lint", "variables"} <= manuscript


def test_every_rule_with_a_script_lists_its_code():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count('script:\n        "../scripts/') == text.count("code=code("), smk.name
