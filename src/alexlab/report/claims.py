"""The claims ledger's verdicts: `python -m alexlab.report claims DIR... --out results/claims`
finds every claim's runs (its study's, studies/) in the run directories below DIR, computes ours
with a 95% confidence interval, checks that a proxy exercises the paper's mechanism, gives a
verdict on direction and size, corrects the family of verdicts with Holm's method, and writes
claims.md and claims.json."""

import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from alexlab import rundir, studies
from alexlab.atomic import write_atomically
from alexlab.metric_keys import (
    LRN_SHARE,
    TEST_ERR_TOP1,
    TEST_ERR_TOP5,
    TRAIN_EVAL_ERR_TOP1,
    TRAIN_WEIGHT_NORM,
)
from alexlab.report import figure1
from alexlab.report.ensembles import ensemble_gains
from alexlab.report.files import write_table
from alexlab.report.runs import Run, epochs_to, load_runs, measured
from alexlab.report.stats import (
    INCONCLUSIVE,
    NOT_RUN,
    NOT_TESTABLE,
    SIDED,
    Interval,
    family_verdict,
    holm,
    interval_text,
    ratio_interval,
    seeds_for_power,
    t_interval,
    verdict,
)
from alexlab.studies import Check, Claim
from alexlab.tables import markdown_table

DATASETS = {"imagenet": "ImageNet", "cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST"}
CHANNELS = {"imagenet": 3, "cifar10": 3, "fashion_mnist": 1}
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
    paper_sizes: list[float | None] | None  # the effects that count as the paper's (None: no end)
    unit: str
    data: str  # the dataset ours was measured on, "(proxy)" when it is not the paper's
    conditions: str
    ours: str  # the effect with its interval, as text (and the claim's `beside` measure's)
    effect: float | None  # the mean effect, in the claim's unit
    low: float | None
    high: float | None
    n: int  # seeds, or test images for a per-image comparison
    censored: int  # of the n, values that are only bounds
    p: float | None  # two-sided, against no effect
    check: str  # the mechanism check, measured: "" where the claim needs none
    over: str  # "seeds" | "images"
    verdict: str
    holm_p: float | None = None
    family_verdict: str = ""
    seeds_for_power: int | None = None  # for 80% power at the paper's size, given our spread
    paper_size_excluded: bool = False  # inconclusive, and its interval clear of the paper's size
    # Seeds whose runs are there but outside the plan (the claim's seeds, else its study's
    # run.seeds): added after a look, or a pilot, so not counted; `with_unplanned` is the
    # interval had they been.
    unplanned_seeds: list[int] = field(default_factory=list)
    with_unplanned: str = ""


def dataset(run: Run) -> str:
    target = str(run.config.get("data", {}).get("_target_", ""))
    return DATAMODULES.get(target.rpartition(".")[0], "unknown")


def arm(runs: Sequence[Run], name: str) -> dict[Any, Run]:
    """The runs of one arm, by seed."""
    return {run.params.get("seed"): run for run in runs if run.arm == name}


def paired(
    runs: Sequence[Run], claim: Claim, quantity: Callable[[Run], float]
) -> list[tuple[float, float]]:
    """(treatment, control) values of the seeds that both arms have finished."""
    treated, controls = arm(runs, claim.treatment), arm(runs, claim.control)
    seeds = sorted(set(treated) & set(controls), key=str)
    return [(quantity(treated[s]), quantity(controls[s])) for s in seeds]


def finite_differences(pairs: list[tuple[float, float]]) -> Interval | None:
    differences = [a - b for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    return t_interval(differences) if differences else None


def difference(runs: Sequence[Run], claim: Claim) -> Interval | None:
    return finite_differences(paired(runs, claim, lambda run: 100 * run.result(claim.metric)))


def gap(run: Run) -> float:
    """How far the final net overfits: its held-out (test) minus its training error, in points,
    both scored alike, in eval mode on un-augmented images (train_eval/: the runs'
    data.train_eval_images), so that dropout and augmentation do not raise the training side."""
    return 100 * (run.result(TEST_ERR_TOP1) - run.result(TRAIN_EVAL_ERR_TOP1))


def gap_difference(runs: Sequence[Run], claim: Claim) -> Interval | None:
    return finite_differences(paired(runs, claim, gap))


def target_of(claim: Claim, run: Run) -> float:
    """The training error an epochs measure counts to: the claim's, else the run's own."""
    return run.config["train"]["target_error"] if claim.target is None else claim.target


def epochs_ratio(runs: Sequence[Run], claim: Claim) -> Interval | None:
    """Epochs to a training error fixed before the runs (the claim's `target`, else the runs'
    train.target_error; on the curve smoothed over the claim's `smoothing` epochs), treatment
    over control. A treatment run that never got there counts its last epoch (censored: the
    ratio is a lower bound); a seed whose control never got there has no ratio."""
    ratios, censored = [], 0
    for treated, control in paired(runs, claim, lambda run: run):
        slow = epochs_to(treated.curve, target_of(claim, treated), claim.smoothing)
        fast = epochs_to(control.curve, target_of(claim, control), claim.smoothing)
        if math.isnan(fast):
            continue
        if math.isnan(slow):
            slow, censored = treated.curve[-1][0], censored + 1
        ratios.append(slow / fast)
    return replace(ratio_interval(ratios), censored=censored) if ratios else None


def seconds_ratio(runs: Sequence[Run], claim: Claim) -> Interval | None:
    ratios = [a / b for a, b in paired(runs, claim, lambda run: run.seconds) if a > 0 < b]
    return ratio_interval(ratios) if ratios else None


def speedup(runs: Sequence[Run], claim: Claim) -> Interval | None:
    """Figure 1's ratio at the target fixed before the runs (the curve's first)."""
    runs = [r for r in runs if r.curve]
    try:
        first = figure1.speedups(runs, figure1.targets_for(runs)[:1])[0]
    except figure1.NotMeasured:  # the rates are chosen; the runs that measure are to come
        return None
    return replace(first.interval, censored=first.censored) if first.interval else None


def worst_error(claim: Claim) -> float:
    """The highest error that still counts as the paper's, in %."""
    return claim.paper_effect + claim.tolerance


def error_value(runs: Sequence[Run], claim: Claim) -> Interval | None:
    """Our error, tested against the worst that still counts as the paper's."""
    values = [100 * r.result(claim.metric) for r in runs]
    values = [v for v in values if math.isfinite(v)]
    return t_interval(values, no_effect=worst_error(claim)) if values else None


MEASURES: dict[str, Callable[[Sequence[Run], Claim], Interval | None]] = {
    studies.DIFFERENCE: difference,
    studies.GAP_DIFFERENCE: gap_difference,
    studies.EPOCHS_RATIO: epochs_ratio,
    studies.SECONDS_RATIO: seconds_ratio,
    studies.SPEEDUP: speedup,
    studies.ERROR_VALUE: error_value,
}


def lrn_share(run: Run) -> float:
    """The share of LRN's normalizer from its neighbours' activity at the run's most active LRN
    layer, averaged over training (callbacks.LRNShare's log); NaN if the run logged none."""
    rows = run.history
    layers = {key for row in rows for key in row if key.startswith(LRN_SHARE)}
    means = [statistics.fmean(row[key] for row in rows if key in row) for key in layers]
    return max(means, default=math.nan)


def weight_shrink(runs: Sequence[Run], claim: Claim) -> list[float]:
    """Per seed, how much smaller the weights' final norm is with weight decay (the control) than
    without it (the treatment), as a share of the latter."""
    norms = paired(runs, claim, lambda run: run.result(TRAIN_WEIGHT_NORM))
    return [1 - with_decay / without for without, with_decay in norms]


def mechanism(claim: Claim, data: str, runs: Sequence[Run]) -> tuple[str, bool | None]:
    """The claim's mechanism check on these runs: what was measured, and whether it holds on
    every seed (None: not measured, its runs are not there). A quantity measured per run is
    judged at its least favourable seed."""
    check: Check = claim.check

    def lowest(arm_name: str, quantity: Callable[[Run], float]) -> float:
        values = [quantity(r) for r in arm(runs, arm_name).values()]
        return min(values) if values else math.nan  # NaN: the arm has no runs

    if check.measure == studies.CHANNELS:
        value, text = CHANNELS.get(data, 0), f"{CHANNELS.get(data, 0)} channel(s)"
    elif check.measure == studies.GAP:
        value = lowest(check.arm, gap)
        text = (
            f"{check.arm} overfits by {value:.1f} points at its lowest seed (held-out - "
            "training error, eval mode)"
        )
    elif check.measure == studies.LRN_SHARE:
        value = lowest(claim.control, lrn_share)
        text = f"LRN's neighbour term: {value:.1%} of its normalizer at its lowest seed"
    elif check.measure == studies.TOP5_ROOM:
        value = lowest(claim.control, lambda r: 100 * r.result(TEST_ERR_TOP5))
        text = f"top-5 error {value:.1f}% with the paper's choice at its lowest seed"
    elif check.measure == studies.WEIGHT_SHRINK:
        shrinks = weight_shrink(runs, claim)
        value = min(shrinks) if shrinks else math.nan
        text = f"decay shrinks the weights' norm by {value:.1%} at its lowest seed"
    elif check.measure == studies.REACHES:
        runs_of_arm = arm(runs, check.arm).values()
        reached = [
            not math.isnan(epochs_to(r.curve, target_of(claim, r), claim.smoothing))
            for r in runs_of_arm
        ]
        value = statistics.fmean(reached) if reached else math.nan
        text = f"{sum(reached)} of {len(reached)} {check.arm} runs reach their target"
    else:  # EPOCHS_TRAINED
        value = min(float(r.config["trainer"]["max_epochs"]) for r in runs)
        text = f"{value:g} epochs trained"
    if math.isnan(value):  # the runs it is measured on are not there
        return "", None
    passed = value >= check.threshold
    return f"{'holds' if passed else 'fails'}: {text}", passed


def power(claim: Claim, interval: Interval) -> int | None:
    """Seeds for 80% power at the paper's size, from our spread over seeds."""
    if claim.paper_effect is None or claim.measure in (studies.ERROR_VALUE, studies.ENSEMBLE_GAIN):
        return None
    effect = math.log(claim.paper_effect) if claim.unit == "x" else claim.paper_effect
    return seeds_for_power(interval.spread, effect)


def claim_verdict(claim: Claim, interval: Interval) -> str:
    if claim.measure == studies.ERROR_VALUE:  # as good as the paper's error, or within tolerance
        worst = worst_error(claim)
        oriented = Interval(worst - interval.mean, worst - interval.high, worst - interval.low, 1)
        return verdict(oriented, 0.0)
    return verdict(interval, 1.0 if claim.unit == "x" else 0.0, claim.paper_sizes)


def effect_text(claim: Claim, interval: Interval) -> str:
    unit = {"points": " points", "x": "x", "%": "%"}[claim.unit]
    ours = interval_text(interval, unit, digits=2 if claim.unit == "x" else 1)
    return f"≥ {ours} ({interval.censored} censored)" if interval.censored else ours


def finding(
    claim: Claim,
    data: str,
    interval: Interval | None,
    text: str,
    check: tuple[str, bool | None] = ("", True),
    over: str = "seeds",
    beside: Interval | None = None,
) -> Finding:
    """A row: `check` is the mechanism check's measured text and whether it holds; a row that
    fails it is not testable on this proxy, whatever its interval says, and one whose check has
    no runs to be measured on is not run. `beside`: the claim's second measure, shown with ours."""
    label = DATASETS.get(data, data) + ("" if data == claim.paper_data else " (proxy)")
    paper = {
        "key": claim.key,
        "claim": claim.claim,
        "source": claim.source,
        "paper": claim.paper,
        "paper_effect": claim.paper_effect,
        "paper_sizes": [x if math.isfinite(x) else None for x in claim.paper_sizes]
        if claim.paper_sizes
        else None,
        "unit": claim.unit,
        "data": label,
        "conditions": text,
        "check": check[0],
        "over": over,
    }
    if interval is None or check[1] is None:
        none = dict(effect=None, low=None, high=None, n=0, censored=0, p=None)
        return Finding(
            **paper, ours="-", verdict=NOT_TESTABLE if check[1] is False else NOT_RUN, **none
        )
    row_verdict = claim_verdict(claim, interval) if check[1] else NOT_TESTABLE
    excluded = row_verdict == INCONCLUSIVE and bool(excludes_paper_size(claim, interval))
    ours = effect_text(claim, interval)
    if beside is not None:
        ours += f"; {claim.beside}: {effect_text(claim, beside)}"
    return Finding(
        **paper,
        ours=ours,
        effect=interval.mean,
        low=interval.low if math.isfinite(interval.low) else None,
        high=interval.high if math.isfinite(interval.high) else None,
        n=interval.n,
        censored=interval.censored,
        p=interval.p if math.isfinite(interval.p) else None,
        verdict=row_verdict,
        seeds_for_power=power(claim, interval)
        if row_verdict == INCONCLUSIVE and not excluded
        else None,
        paper_size_excluded=excluded,
    )


def excludes_paper_size(claim: Claim, interval: Interval) -> bool:
    """Whether the interval lies clear of every size that counts as the paper's (an error value
    is judged against the paper's error itself, not a size)."""
    sizes = claim.paper_sizes
    if sizes is None or claim.measure == studies.ERROR_VALUE:
        return False
    return interval.high < sizes[0] or interval.low > sizes[1]


def correct_for_the_family(rows: list[Finding]) -> None:
    """Holm's adjusted p and verdict for every row that tested its claim."""
    tested = [r for r in rows if r.verdict not in (NOT_RUN, NOT_TESTABLE) and r.p is not None]
    for row, adjusted in zip(tested, holm([r.p for r in tested]), strict=True):
        row.holm_p, row.family_verdict = adjusted, family_verdict(row.verdict, adjusted)
    for row in rows:
        row.family_verdict = row.family_verdict or row.verdict


# An ensemble evaluation: the dataset and study of its sweep's runs, and its directory.
Evaluation = tuple[str, str | None, Path]


def find_evidence(directories: Sequence[Path]) -> tuple[list[Run], list[Evaluation]]:
    """Every run below the directories, and every ensemble evaluation (an eval/ directory of
    src/eval.py inside a sweep's directory) with the dataset and study of its sweep's runs."""
    runs: list[Run] = []
    evaluations = []
    for directory in directories:
        found = load_runs(directory)
        runs += found
        for eval_dir in rundir.evaluations(directory):
            mine = {(dataset(r), r.study) for r in found if Path(r.sweep) == eval_dir.parent}
            evaluations += [(data, study, eval_dir) for data, study in sorted(mine, key=str)]
    return runs, evaluations


def ensemble_finding(claim: Claim, data: str, eval_dir: Path) -> Finding:
    """The ensemble against its best single net (the smallest gain); the others in the text."""
    gains = ensemble_gains(eval_dir)
    weakest = min(gains, key=lambda name: gains[name].mean)
    others = "; ".join(
        f"{name}: {interval_text(g, ' points', digits=1)}" for name, g in gains.items()
    )
    text = f"{claim.proxy}; against each net: {others}"
    return finding(claim, data, gains[weakest], text, over="images")


# The measures that pair runs by seed: judged on the seeds of their study's plan alone.
BY_SEED = (studies.DIFFERENCE, studies.GAP_DIFFERENCE, studies.EPOCHS_RATIO, studies.SECONDS_RATIO)


def measured_finding(
    claim: Claim, data: str, runs: Sequence[Run], plan: Sequence[int] | None
) -> Finding:
    """A claim's row on one dataset's runs. Where it has a plan (its own seeds, else its study's
    run.seeds, written before the runs), a paired measure counts the planned seeds alone: runs
    of other seeds were added after a look (counting them would overstate the evidence: optional
    stopping) or were a pilot. The row lists them, with the interval they would have given."""
    plan = claim.seeds or plan
    planned, unplanned = list(runs), []
    if plan is not None and claim.measure in BY_SEED:
        planned = [r for r in runs if r.params.get("seed") in plan]
        both = set(arm(runs, claim.treatment)) & set(arm(runs, claim.control))
        unplanned = sorted(both - set(plan), key=str)  # the seeds that would have counted
    text = "the paper's" if data == claim.paper_data else claim.proxy
    check = ("", True)
    if claim.check is not None and data != claim.paper_data:
        check = mechanism(claim, data, planned)
    measure = MEASURES[claim.measure]
    beside = MEASURES[claim.beside](planned, claim) if claim.beside else None
    row = finding(claim, data, measure(planned, claim), text, check, beside=beside)
    if unplanned and (everything := measure(runs, claim)) is not None:
        row.unplanned_seeds, row.with_unplanned = unplanned, effect_text(claim, everything)
    return row


def judge(
    runs: Sequence[Run],
    evaluations: Sequence[Evaluation],
    claims: Sequence[Claim],
    plans: Mapping[str, Sequence[int]],
) -> list[Finding]:
    """Every claim's rows, one per dataset its study's runs are on (and the paper's, not run
    here where they are not on it), the family corrected. `plans`: each study's seeds, fixed
    before its runs (a study without one counts every seed)."""
    complete = measured(runs)
    rows = []
    for claim in claims:
        found: dict[str, Finding] = {}
        if claim.measure == studies.ENSEMBLE_GAIN:
            for data, study, eval_dir in evaluations:
                if study == claim.study:
                    found[data] = ensemble_finding(claim, data, eval_dir)
        else:
            mine = [r for r in complete if r.study == claim.study]
            for data in sorted({dataset(r) for r in mine}):
                of_data = [r for r in mine if dataset(r) == data]
                found[data] = measured_finding(claim, data, of_data, plans.get(claim.study))
        if claim.paper_data not in found:
            rows.append(finding(claim, claim.paper_data, None, "no runs on the paper's data here"))
        rows += found.values()
    correct_for_the_family(rows)
    return rows


HOW_TO_READ = """\
How to read it. Each effect is oriented so that the paper's direction is positive (points: the
error with the paper's choice undone minus with it; x: a ratio of epochs or seconds). Ours is the
mean over seeds with its 95% Student-t interval (ratios: geometric mean, interval on the
logarithms), or, for fixed nets compared on the same test images, the paired difference with
McNemar's exact test. The paper's size is the number it prints, with the tolerance a claim
declares in its study's file (studies/) before its runs (ranges in claims.json).

- **reproduced**: the interval lies on the paper's side of no effect and reaches the paper's size
  (for a claim without a number: on the paper's side);
- **direction only**: on the paper's side, but the paper's size is outside the interval;
- **not reproduced**: the interval lies on the other side of no effect;
- **inconclusive**: the interval spans no effect; *seeds for 80% power* is how many seeds a run
  would need to detect the paper's size with 80% probability at the 5% level, given the spread
  over our seeds (noncentral t); where the interval also lies clear of the paper's size, the row
  says *paper's size excluded* and gives no seeds (power at a size the data exclude means
  nothing);
- **not testable on this proxy**: the proxy fails the row's mechanism check (the condition under
  which it exercises the paper's mechanism, measured on its own runs), so its interval says
  nothing about the paper's mechanism, whatever it shows;
- **not run here**: no runs on that data (ImageNet needs a GPU and days).

The verdict column judges each row on its own (uncorrected). **Holm** is the verdict once the
family is corrected, and the one the headline counts: every row that tested its claim is one
hypothesis, and a side of no effect stands only if its Holm-adjusted p is below 5%; otherwise it
reads inconclusive. A ≥ marks a lower bound: some runs never reached the target (censored), and
their last epoch counts.

Each row counts the seeds of its plan, written in its study's file before the runs (the claim's
`seeds`, else the study's `run.seeds`). Runs of other seeds are listed in the n column as
*outside the plan* and not counted: seeds added after a look at the planned ones (a fixed-n test
on seeds added until a row looks decided overstates its significance), or the pilot of a
confirmation on fresh seeds. The conditions below give what they would have shown.
"""


def headline(rows: Sequence[Finding]) -> str:
    """The counts a reader quotes: Holm's verdicts over the rows that tested their claim."""
    tested = [r for r in rows if r.verdict not in (NOT_RUN, NOT_TESTABLE)]
    counts = Counter(r.family_verdict for r in tested)
    kept = ", ".join(f"{counts[v]} {v}" for v in SIDED if counts[v]) or "none"
    untested = Counter(r.verdict for r in rows if r not in tested)
    rest = "; ".join(f"{n} {v}" for v, n in sorted(untested.items()))
    keep = sum(counts[v] for v in SIDED)
    return (
        f"**Headline**, the family corrected (Holm): of the {len(tested)} rows that tested their "
        f"claim, {keep} {'keeps its' if keep == 1 else 'keep their'} side ({kept}) and "
        f"{counts[INCONCLUSIVE]} {'is' if counts[INCONCLUSIVE] == 1 else 'are'} inconclusive; "
        f"{rest}."
    )


def plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


def claims_report(directories: Sequence[Path], out: Path, study_dirs: Sequence[Path] = ()) -> str:
    """claims.md (the table) and claims.json (the same, with the numbers) at `out`: the claims of
    every study in studies/ and the further `study_dirs`."""
    runs, evaluations = find_evidence(directories)
    rows = judge(runs, evaluations, *studies.claims_and_plans(study_dirs))
    seconds = sum(run.seconds for run in runs if math.isfinite(run.seconds))  # NaN: not ended
    hours, minutes = divmod(round(seconds / 60), 60)
    headers = [
        "claim",
        "source",
        "paper",
        "data",
        "ours (95% CI)",
        "n",
        "mechanism check",
        "verdict (uncorrected)",
        "Holm",
        "seeds for 80% power",
    ]
    table = [
        [
            r.claim,
            r.source,
            r.paper,
            r.data,
            r.ours,
            (f"{r.n} {r.over}" if r.n else "-")
            + (f" (+{len(r.unplanned_seeds)} outside the plan)" if r.unplanned_seeds else ""),
            r.check or "-",
            f"**{r.verdict}**" + (" (paper's size excluded)" if r.paper_size_excluded else ""),
            r.family_verdict if r.holm_p is None else f"{r.family_verdict} (p {r.holm_p:.3g})",
            r.seeds_for_power or "-",
        ]
        for r in rows
    ]
    notes = [
        f"- **{r.claim}** ({r.data}): {r.conditions}"
        + (
            f"; {plural(len(r.unplanned_seeds), 'seed')} {', '.join(map(str, r.unplanned_seeds))}"
            f" {'is' if len(r.unplanned_seeds) == 1 else 'are'} outside the plan and not counted"
            f" (with them: {r.with_unplanned})"
            if r.unplanned_seeds
            else ""
        )
        for r in rows
        if r.verdict != NOT_RUN
    ]
    report = (
        "# The paper's claims, checked\n\n"
        + HOW_TO_READ
        + f"\n{headline(rows)}\n\n"
        + f"The {len(runs)} runs behind it took {hours} h {minutes:02d} min of machine time (the "
        "sum of their records' seconds; runs made two at a time each count their own).\n\n"
        + markdown_table(headers, table)
        + "\n## Conditions of each measured row\n\n"
        + "\n".join(notes)
        + "\n"
    )
    # Both files' text before either is written: a row that cannot be written leaves neither.
    text = json.dumps([asdict(row) for row in rows], indent=2, allow_nan=False, ensure_ascii=False)
    write_table(out, report)
    write_atomically(out.with_suffix(".json"), text + "\n")
    return report
