"""The README and docs/: a short manual whose links resolve, whose make targets exist, and whose
numbers are those of the committed files they quote."""

import csv
import json
import re
import statistics
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import REPO, conf_net

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
MAIN_JOB = DOCS / "evidence" / "main_job"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]


def test_readme_is_a_short_manual():
    assert len(README.read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page: Path):
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target}"
        if anchor and resolved.suffix == ".md":
            slugs = {slug(h) for h in HEADING.findall(resolved.read_text())}
            assert anchor in slugs, f"{page.name}: {target}"


def test_every_make_target_the_docs_name_is_in_the_makefile():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z0-9-]+):", makefile, re.MULTILINE))
    for page in PAGES:
        text = page.read_text()
        # `make train ...`, and the families' members named alone: `reproduce-ablations`
        named = set(re.findall(r"\bmake ([a-z][a-z0-9-]*[a-z0-9])(?![-*.\w])", text))
        named |= set(re.findall(r"`((?:reproduce|evaluate|bench)-[a-z0-9-]*[a-z0-9])`", text))
        assert named <= targets, f"{page.name}: {named - targets}"


def main_job_runs() -> list[dict]:
    return [
        json.loads((MAIN_JOB / s / "results.json").read_text()) for s in sorted(MAIN_JOB.iterdir())
    ]


def flat(page: Path) -> str:
    """The page's text with line breaks as spaces: a quoted number may be wrapped."""
    return " ".join(page.read_text().split())


def test_the_main_jobs_numbers_are_its_committed_runs():
    readme = flat(README)
    runs = main_job_runs()
    tests = [100 * run["test/err_top1"] for run in runs]
    seed0 = f"{tests[0]:.1f}%"
    assert f"test top-1 error is **{seed0}**" in readme
    assert "| seed=0 | 3 |" in (DOCS / "main_job.md").read_text()
    assert f"| {seed0} |  |" in (DOCS / "main_job.md").read_text()  # the report's seed=0 row
    spread = f"{statistics.mean(tests):.1f}% ± {statistics.stdev(tests):.1f}"
    assert f"over seeds 0, 1 and 2, {spread}" in readme
    with open(MAIN_JOB / "seed0" / "metrics.csv") as f:
        val = [100 * float(r["val/err_top1"]) for r in csv.DictReader(f) if r["val/err_top1"]]
    assert "validation errors of {:.1f}%, {:.1f}% and {:.1f}%".format(*val) in readme
    reproducing = flat(DOCS / "reproducing.md")
    assert f"**test top-1 error {seed0}** with seed 0" in reproducing
    assert "validation top-1 error {:.1f}%, {:.1f}%, {:.1f}%".format(*val) in reproducing
    assert f"{runs[0]['train/epochs_to_target']:.1f} epochs" in reproducing


def test_the_init_and_input_table_is_the_committed_report():
    # docs/main_job_inputs.md: | model.init=I data.mean=M | 3 | training | val | test |  |
    report = (DOCS / "main_job_inputs.md").read_text()
    rows = re.findall(
        r"\| model\.init=(\w+) data\.mean=(\w+) \| 3 \| ([\d.]+%) \| [\d.]+% \| ([\d.]+%)", report
    )
    table = (DOCS / "reproducing.md").read_text()
    assert len(rows) == 4
    for init, mean, training, test in rows:
        assert re.search(rf"\| `{init}`[^|]* \| `{mean}`[^|]* \| {training} \| {test} \|", table), (
            init
        )


def test_every_interval_the_docs_quote_is_in_a_committed_report():
    committed = "".join(p.read_text() for p in (REPO / "results").glob("*.md"))
    for page in [README, DOCS / "reproducing.md", DOCS / "evaluation.md"]:
        for interval in re.findall(r"\[-?\d+\.\d+, -?\d+\.\d+\]", page.read_text()):
            assert interval in committed, f"{page.name}: {interval}"


def multiply_adds(net: torch.nn.Module, size: int) -> int:
    """Multiply-adds of one image through the net's convolutions and linear layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_output = (
                module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
            total += output.numel() * per_output
        else:
            total += output.numel() * module.in_features

    layers = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    hooks = [m.register_forward_hook(count) for m in layers]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return total


def test_the_multiply_adds_docs_speed_quotes_are_counted():
    ours = round(multiply_adds(conf_net("alexnet"), 224) / 1e6)
    torchvisions = round(multiply_adds(torchvision.models.alexnet(), 224) / 1e6)
    assert f"{ours}M and {torchvisions}M multiply-adds an image" in (DOCS / "speed.md").read_text()
