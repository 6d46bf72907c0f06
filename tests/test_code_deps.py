"""A rule reruns when the package code its script runs changes: the script's package dependencies."""

from pathlib import Path

from timecourse_meta.core import code_deps

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def names(paths):
    """Module names of source paths: 'steps' for .../steps.py, 'model/__init__' for a package's init."""
    out = set()
    for p in map(Path, paths):
        out.add(f"{p.parent.name}/__init__" if p.stem == "__init__" and p.parent.name != "timecourse_meta"
                else p.stem)
    return out


def test_function_level_dependencies_in_a_small_package(tmp_path):
    pkg = tmp_path / "workflow" / "timecourse_meta"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "steps.py").write_text(
        "from . import fitting as fit_mod\n"
        "from timecourse_meta.plotting import draw\n"
        "def run_fit():\n    return _helper()\n"
        "def _helper():\n    return fit_mod.go()\n"
        "def run_plot():\n    from . import render\n    return draw()\n")
    (pkg / "fitting.py").write_text("from . import maths\ndef go():\n    return maths\n")
    (pkg / "maths.py").write_text("")
    (pkg / "plotting.py").write_text("def draw():\n    return 1\n")
    (pkg / "render.py").write_text("")
    script = tmp_path / "fit.py"
    script.write_text("from timecourse_meta.steps import run_fit\nrun_fit()\n")
    # run_fit -> _helper -> fit_mod (fitting) -> maths; not plotting or render
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "fitting", "maths"}
    assert code_deps.script_sources(script, pkg)[0].startswith("workflow/timecourse_meta/")
    script.write_text("from timecourse_meta.steps import run_plot\n")
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "plotting", "render"}
    script.write_text("from timecourse_meta import steps\n")  # the whole module
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "steps", "fitting", "maths", "plotting",
                                                             "render"}


def test_the_workflow_scripts_depend_on_what_they_run():
    fit = names(code_deps.script_sources(SCRIPTS / "fit_model.py"))
    assert {"runner", "fit", "build", "sample", "priors", "model_data", "summary", "diagnostics"} <= fit
    assert not {"forest", "common", "render", "variables", "figure_data"} & fit
    forest = names(code_deps.script_sources(SCRIPTS / "forest.py"))
    assert {"runner", "forest", "common", "format", "figure_data", "tables"} <= forest
    assert not {"fit", "build", "sample", "render"} & forest
    manuscript = names(code_deps.script_sources(SCRIPTS / "manuscript.py"))
    assert {"document", "render", "prepass", "lint"} <= manuscript
    # the render reads the variables file; the code that builds it belongs to the variables rule only
    assert not {"variables/__init__", "build", "outcomes"} & manuscript
    variables = names(code_deps.script_sources(SCRIPTS / "variables.py"))
    assert {"variables/__init__", "build", "outcomes", "comparison", "format"} <= variables


def test_every_rule_with_a_script_lists_its_code():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count('script:\n        "../scripts/') == text.count("code=code("), smk.name


def test_subpackages_count_with_their_init_files(tmp_path):
    """A module in a stage subpackage pulls in that subpackage's __init__ (Python runs it), relative imports
    resolve against the subpackage, and a sibling stage the function does not use stays out."""
    pkg = tmp_path / "workflow" / "timecourse_meta"
    for sub in ("model", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "model" / "fit.py").write_text("from .priors import scale\nfrom timecourse_meta.report import plots\n"
                                          "def run():\n    return scale\ndef draw():\n    return plots\n")
    (pkg / "model" / "priors.py").write_text("scale = 1\n")
    (pkg / "report" / "plots.py").write_text("")
    script = tmp_path / "fit.py"
    script.write_text("from timecourse_meta.model.fit import run\n")
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "model/__init__", "fit", "priors"}
    script.write_text("from timecourse_meta.model import fit\n")
    assert names(code_deps.script_sources(script, pkg)) == {"__init__", "model/__init__", "fit", "priors",
                                                             "report/__init__", "plots"}
