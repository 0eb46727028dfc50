"""The committed reports are what their committed runs give: regenerated here from the small
per-run files (configs, metrics.csv, results.json, records, src/eval.py's probabilities) in
results/sweeps/ and docs/evidence/."""

from pathlib import Path

import pytest
from conftest import REPO

from alexlab import reproduce
from alexlab.report.__main__ import main, make_report

DOCS = REPO / "docs"
EVIDENCE = DOCS / "evidence"
MAIN_JOB_INPUTS = ["paper-image", "paper-normalize", "kaiming-image", "kaiming-normalize"]
SWEEPS = "results/sweeps"


@pytest.mark.parametrize(
    "name, runs",
    [
        ("main_job", ["seed0", "seed1", "seed2"]),  # README, "What the main job does"
        ("main_job_inputs", MAIN_JOB_INPUTS),  # the four combinations of init and input
    ],
)
def test_main_job_report_is_regenerated_from_its_runs(tmp_path: Path, name, runs):
    out = tmp_path / name
    make_report("curves", [str(EVIDENCE / name / run) for run in runs], out)
    assert out.with_suffix(".md").read_text() == (DOCS / f"{name}.md").read_text()
    assert out.with_suffix(".png").stat().st_size > 10_000  # a figure, not an empty canvas


def study_reports() -> dict[str, list[str]]:
    """The reports `python -m alexlab.reproduce` renders from the committed runs on
    Fashion-MNIST, as their study files say: the name of each, its arguments but --out."""
    names = ["ablations", "ablations_lrn", "ablations_overfitting", "lrn_cifar", "relu_speedup"]
    names += ["relu_speedup_modern"]
    steps = reproduce.plan(names, "fashion_mnist", Path("results"))
    found = {}
    for step in steps:
        if step.program == reproduce.REPORT:
            args = list(step.args)
            at = args.index("--out")
            found[Path(args[at + 1]).name] = args[:at] + args[at + 2 :]
    return found


@pytest.mark.parametrize(
    "name, arguments",
    [
        *study_reports().items(),
        ("all_sweeps", ["sweeps", SWEEPS]),
        ("more_seeds", ["more-seeds", SWEEPS, "--budget", "60"]),
    ],
)
def test_committed_result_is_regenerated_from_its_runs(
    tmp_path, monkeypatch, capsys, name, arguments
):
    monkeypatch.chdir(REPO)  # the commands of the studies, with their relative paths
    out = tmp_path / name
    main([*arguments, "--out", str(out)])
    capsys.readouterr()
    assert out.with_suffix(".md").read_text() == (REPO / "results" / f"{name}.md").read_text()
    png = out.with_suffix(".png")
    if (REPO / "results" / f"{name}.png").exists():
        assert png.stat().st_size > 10_000  # a figure, not an empty canvas
