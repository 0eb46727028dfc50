"""The reports committed in docs/ are what their committed runs give: regenerated here from the
small per-run files in docs/evidence/ (configs, metrics.csv, results.json, records)."""

from pathlib import Path

import pytest
from conftest import REPO

from alexlab.report.__main__ import make_report

DOCS = REPO / "docs"
EVIDENCE = DOCS / "evidence"
MAIN_JOB_INPUTS = ["paper-image", "paper-normalize", "kaiming-image", "kaiming-normalize"]


@pytest.mark.parametrize(
    "name, report, sources",
    [
        # The main job's departures (README, "What the main job does").
        ("main_job_inputs", "curves", [f"main_job_inputs/{run}" for run in MAIN_JOB_INPUTS]),
        # The paper's CIFAR-10 LRN nets on Fashion-MNIST (README, conv_local).
        ("lrn_cifar-fashion_mnist", "lrn-cifar", ["lrn_cifar-fashion_mnist"]),
    ],
)
def test_committed_report_is_regenerated_from_its_runs(tmp_path: Path, name, report, sources):
    out = tmp_path / name
    make_report(report, [str(EVIDENCE / source) for source in sources], out)
    assert out.with_suffix(".md").read_text() == (DOCS / f"{name}.md").read_text()
    assert out.with_suffix(".png").stat().st_size > 10_000  # a figure, not an empty canvas
