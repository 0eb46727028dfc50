"""The claims ledger's verdicts: `python -m alexlab.report claims DIR... --out results/claims`
finds every claim's runs (src/alexlab/claims.py) in the run directories below DIR, computes ours
with a 95% confidence interval over seeds and a verdict, and writes claims.md and claims.json."""

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alexlab import claims as ledger
from alexlab.claims import Claim
from alexlab.evaluation import ensemble, errors, load
from alexlab.report import figure1
from alexlab.report.runs import Run, epochs_to, load_runs, measured
from alexlab.report.stats import (
    NOT_RUN,
    Interval,
    ratio_interval,
    t_interval,
    verdict,
)
from alexlab.report.tables import interval_text, markdown_table

DATASETS = {"imagenet": "ImageNet", "cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST"}
# A run's dataset, from the datamodule its config built.
DATAMODULES = {
    "alexlab.data.fashion_mnist": "fashion_mnist",
    "alexlab.data.cifar10": "cifar10",
    "alexlab.data.imagenet_ffcv": "imagenet",
    "alexlab.data.imagenet_folder": "imagenet",
    "alexlab.data.synthetic": "synthetic",
}


@dataclass
class Finding:
    """One row of the ledger: a claim on one dataset, ours beside the paper's."""

    key: str
    claim: str
    source: str
    paper: str
    paper_effect: float | None  # in `unit`, where the paper gives a number
    unit: str
    data: str  # the dataset ours was measured on, "(proxy)" when it is not the paper's
    conditions: str
    ours: str  # the effect with its interval, as text
    effect: float | None  # the mean effect, in the claim's unit
    low: float | None
    high: float | None
    seeds: int
    verdict: str


def dataset(run: Run) -> str:
    target = str(run.config.get("data", {}).get("_target_", ""))
    return DATAMODULES.get(target.rpartition(".")[0], "unknown")


def matches(run: Run, wanted: dict[str, Any]) -> bool:
    def fits(key: str, value: Any) -> bool:
        if value == ledger.ABSENT:
            return key not in run.params
        return key in run.params and (value is ledger.ANY or run.params[key] == value)

    return all(fits(key, value) for key, value in wanted.items())


def by_seed(runs: Sequence[Run], by: str, value: str) -> dict[Any, Run]:
    return {run.params.get("seed"): run for run in runs if str(run.params.get(by)) == value}


def paired(
    runs: Sequence[Run], options: dict[str, Any], quantity: Callable[[Run], float]
) -> list[tuple[float, float]]:
    """(treatment, control) values of the seeds that both groups have finished."""
    treated = by_seed(runs, options["by"], options["treatment"])
    controls = by_seed(runs, options["by"], options["control"])
    seeds = sorted(set(treated) & set(controls), key=str)
    pairs = [(quantity(treated[s]), quantity(controls[s])) for s in seeds]
    return [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]


def difference(runs: Sequence[Run], options: dict[str, Any]) -> Interval | None:
    pairs = paired(runs, options, lambda run: 100 * run.result(options["metric"]))
    return t_interval([a - b for a, b in pairs]) if pairs else None


def epochs_ratio(runs: Sequence[Run], options: dict[str, Any]) -> Interval | None:
    """Epochs to the training error that every run of both groups reaches: the highest of their
    last checks' errors."""
    compared = (options["treatment"], options["control"])
    groups = [run for run in runs if str(run.params[options["by"]]) in compared]
    if not all(run.curve for run in groups):
        return None
    target = max(run.curve[-1][1] for run in groups)
    pairs = paired(runs, options, lambda run: epochs_to(run.curve, target))
    return ratio_interval([a / b for a, b in pairs]) if pairs else None


def speedup(runs: Sequence[Run], options: dict[str, Any]) -> Interval | None:
    """Figure 1's ratio at the paper-equivalent target (the curve's first)."""
    runs = [r for r in runs if r.curve]
    first = figure1.speedups(runs, figure1.targets_for(runs)[:1])[0]
    return first.interval


def error_value(runs: Sequence[Run], options: dict[str, Any]) -> Interval | None:
    values = [100 * r.result(options["metric"]) for r in runs]
    values = [v for v in values if math.isfinite(v)]
    return t_interval(values) if values else None


MEASURES: dict[str, Callable[[Sequence[Run], dict[str, Any]], Interval | None]] = {
    ledger.DIFFERENCE: difference,
    ledger.EPOCHS_RATIO: epochs_ratio,
    ledger.SPEEDUP: speedup,
    ledger.ERROR_VALUE: error_value,
}


def ensemble_gain(eval_dir: Path) -> Interval:
    """One net's test error minus the ensemble's, over the nets (points): src/eval.py's saved
    probabilities, no net run again."""
    probs, labels = load(eval_dir)
    combined = 100 * errors(ensemble(list(probs.values())), labels)["err_top1"]
    return t_interval([100 * errors(p, labels)["err_top1"] - combined for p in probs.values()])


def claim_verdict(claim: Claim, interval: Interval) -> str:
    if claim.measure == ledger.ERROR_VALUE:  # as good as the paper's error, or better
        return verdict(Interval(0, claim.paper_effect - interval.high, 0, interval.n), -math.inf)
    return verdict(interval, 1.0 if claim.unit == "x" else 0.0)


def finding(claim: Claim, data: str, interval: Interval | None, text: str) -> Finding:
    label = DATASETS.get(data, data) + ("" if data == claim.paper_data else " (proxy)")
    paper = {
        "key": claim.key,
        "claim": claim.claim,
        "source": claim.source,
        "paper": claim.paper,
        "paper_effect": claim.paper_effect,
        "unit": claim.unit,
        "data": label,
        "conditions": text,
    }
    if interval is None:
        return Finding(
            **paper, ours="-", effect=None, low=None, high=None, seeds=0, verdict=NOT_RUN
        )
    unit = {"points": " points", "x": "x", "%": "%"}[claim.unit]
    return Finding(
        **paper,
        ours=interval_text(interval, unit, digits=2 if claim.unit == "x" else 1),
        effect=interval.mean,
        low=interval.low if math.isfinite(interval.low) else None,
        high=interval.high if math.isfinite(interval.high) else None,
        seeds=interval.n,
        verdict=claim_verdict(claim, interval),
    )


def find_evidence(directories: Sequence[Path]) -> tuple[list[Run], list[tuple[str, Path]]]:
    """Every run below the directories, and every ensemble evaluation (an eval/ directory of
    src/eval.py inside a sweep's directory) with the dataset of its sweep's runs."""
    runs: list[Run] = []
    evaluations = []
    for directory in directories:
        found = load_runs(directory)
        runs += found
        for labels in sorted(directory.rglob("eval/labels.npy")):
            sweep = labels.parent.parent
            datasets = {dataset(r) for r in found if Path(r.sweep) == sweep}
            evaluations += [(data, labels.parent) for data in datasets]
    return runs, evaluations


def judge(runs: Sequence[Run], evaluations: Sequence[tuple[str, Path]]) -> list[Finding]:
    complete = measured(runs)
    rows = []
    for claim in ledger.CLAIMS:
        by_data: dict[str, tuple[Interval | None, str]] = {}
        if claim.measure == ledger.ENSEMBLE_GAIN:
            for data, eval_dir in evaluations:
                by_data[data] = (ensemble_gain(eval_dir), claim.proxy)
        else:
            mine = [r for r in complete if matches(r, claim.runs)]
            for data in sorted({dataset(r) for r in mine}):
                of_data = [r for r in mine if dataset(r) == data]
                interval = MEASURES[claim.measure](of_data, claim.options)
                text = "the paper's" if data == claim.paper_data else claim.proxy
                by_data[data] = (interval, text)
        if claim.paper_data not in by_data:
            rows.append(finding(claim, claim.paper_data, None, "no runs on the paper's data here"))
        for data, (interval, text) in by_data.items():
            rows.append(finding(claim, data, interval, text))
    return rows


def claims_report(directories: Sequence[Path], out: Path) -> str:
    """claims.md (the table) and claims.json (the same, with the numbers) at `out`."""
    runs, evaluations = find_evidence(directories)
    rows = judge(runs, evaluations)
    seconds = sum(run.seconds for run in runs if math.isfinite(run.seconds))  # NaN: not ended
    hours, minutes = divmod(round(seconds / 60), 60)
    headers = ["claim", "source", "paper", "data", "ours (95% CI over seeds)", "seeds", "verdict"]
    table = [
        [r.claim, r.source, r.paper, r.data, r.ours, r.seeds or "-", f"**{r.verdict}**"]
        for r in rows
    ]
    notes = [f"- **{r.claim}** ({r.data}): {r.conditions}" for r in rows if r.verdict != NOT_RUN]
    report = (
        "# The paper's claims, checked\n\n"
        "Each effect is oriented so that the paper's direction is positive (points: the error "
        "with the paper's choice undone minus with it; x: a ratio of epochs). Ours is the mean "
        "over seeds with its 95% Student-t interval (ratios: geometric mean, interval on the "
        "logarithms); **reproduced**: the interval lies on the paper's side of no effect, **not "
        "reproduced**: on the other side, **inconclusive**: it spans no effect. Proxy: measured "
        "on other data than the paper's, as the notes below say. The "
        f"{len(runs)} runs behind it took {hours} h {minutes:02d} min of machine time (the sum "
        "of their records' seconds; runs made two at a time each count their own).\n\n"
        + markdown_table(headers, table)
        + "\n## Conditions of each measured row\n\n"
        + "\n".join(notes)
        + "\n"
    )
    out.with_suffix(".md").write_text(report)
    payload = [asdict(row) for row in rows]
    text = json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False)
    out.with_suffix(".json").write_text(text + "\n")
    return report
