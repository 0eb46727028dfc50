"""The committed reports are what their committed runs give: regenerated here from the small
per-run files (configs, metrics.csv, results.json, records, src/eval.py's probabilities) in
results/sweeps/ and docs/evidence/."""

from pathlib import Path

import pytest
from conftest import REPO

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


@pytest.mark.parametrize(
    "name, arguments",
    [
        (
            "relu_vs_tanh-fashion_mnist",
            [
                "relu-speedup",
                f"original={SWEEPS}/relu_vs_tanh-fashion_mnist",
                f"modern={SWEEPS}/relu_vs_tanh_modern-fashion_mnist",
            ],
        ),
        (
            "hyperband-fashion_mnist",
            [
                "hyperband",
                f"{SWEEPS}/relu_vs_tanh-fashion_mnist/relu",
                f"{SWEEPS}/relu_vs_tanh-fashion_mnist/tanh",
                "--sweep-file",
                "sweeps/relu_vs_tanh_relu.yaml",
            ],
        ),
        ("ablations-fashion_mnist", ["ablations", f"{SWEEPS}/ablations-fashion_mnist"]),
        ("ablations_lrn-fashion_mnist", ["ablations", f"{SWEEPS}/ablations-fashion_mnist-lrn"]),
        (
            "ablations_overfitting-fashion_mnist",
            ["ablations", f"{SWEEPS}/ablations-fashion_mnist-overfitting"],
        ),
        ("ensemble-fashion_mnist", ["ensemble", f"{SWEEPS}/ablations-fashion_mnist/eval"]),
        ("lrn_cifar-fashion_mnist", ["lrn-cifar", f"{SWEEPS}/lrn_cifar-fashion_mnist"]),
        ("all_sweeps", ["sweeps", SWEEPS]),
        ("more_seeds", ["more-seeds", SWEEPS, "--budget", "60"]),
    ],
)
def test_committed_result_is_regenerated_from_its_runs(
    tmp_path, monkeypatch, capsys, name, arguments
):
    monkeypatch.chdir(REPO)  # the commands of the Makefile, with its relative paths
    out = tmp_path / name
    main([*arguments, "--out", str(out)])
    capsys.readouterr()
    assert out.with_suffix(".md").read_text() == (REPO / "results" / f"{name}.md").read_text()
    png = out.with_suffix(".png")
    if (REPO / "results" / f"{name}.png").exists():
        assert png.stat().st_size > 10_000  # a figure, not an empty canvas
