"""A confirmation on fresh seeds where one could decide a claim, within a budget of machine time:
`python -m alexlab.report more-seeds DIR... --budget MINUTES --out results/more_seeds`.

A candidate is an inconclusive ablation row whose power figure (the seeds for 80% power at the
paper's size, given our spread) is above its seeds and at most MAX_SEEDS. Its seeds so far are a
pilot: their spread sets the confirmation's n, and they do not count in it, since adding seeds to
a row after looking at it overstates its significance. The confirmation is `needed` fresh seeds,
from one past the arm's last, which the plan asks to be written into the claim's `seeds` in its
study's file before they run (the ledger judges the claim on those alone). One sweep per sweep
directory and first new seed runs the chosen arms and the baseline on the new seeds, with the
settings of the sweep that ran their first seeds (its own sweep.yaml), into a directory of its
own beside it. Its cost is every new run at the mean seconds of its arm's runs so far; rows are
added cheapest first while the plan's cost stays within the budget. The report writes the plan
and prints the sweeps' arguments; nothing here trains."""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alexlab import studies
from alexlab.report.claims import Finding, find_evidence, judge
from alexlab.report.files import write_table
from alexlab.report.runs import Run, measured
from alexlab.report.stats import INCONCLUSIVE
from alexlab.tables import markdown_table

MAX_SEEDS = 12  # beyond this, a proxy's row is not worth deciding by seeds alone
# The ablation studies' arms (conf/ablation/), and the arm with every choice of the paper's.
ABLATION, BASELINE = "ablation", "baseline"


@dataclass
class Candidate:
    key: str
    first_seed: int  # the first new seed: one past the arm's last
    seeds: int  # the pilot's, now
    needed: int  # for 80% power at the paper's size: the confirmation's seeds
    arm: str  # the ablation undone
    sweep: Path  # the sweep directory its runs came from
    arm_seconds: float  # a run of the arm, on average
    baseline_seconds: float  # a run of the baseline, on average

    @property
    def end_seed(self) -> int:
        """One past the last new seed: `needed` fresh ones."""
        return self.first_seed + self.needed

    @property
    def plan(self) -> list[int]:
        """The confirmation's seeds, for the claim's `seeds` in its study's file."""
        return list(range(self.first_seed, self.end_seed))


def arm_seconds(runs: Sequence[Run], arm: str) -> float:
    seconds = [r.seconds for r in runs if r.arm == arm and r.seconds > 0]
    return statistics.fmean(seconds) if seconds else math.inf


def candidates(rows: Sequence[Finding], runs: Sequence[Run]) -> list[Candidate]:
    """The inconclusive rows of an ablation study (its arms the paper's choices undone, against
    the baseline) that more seeds could decide."""
    by_study = {study.name: study for study in studies.load_all()}
    claims = {claim.key: claim for study in by_study.values() for claim in study.claims}
    complete = measured(list(runs))
    found = []
    for row in rows:
        claim = claims[row.key]
        if (
            row.verdict != INCONCLUSIVE
            or row.seeds_for_power is None
            or not row.n < row.seeds_for_power <= MAX_SEEDS
            or by_study[claim.study].arms_by != ABLATION
            or BASELINE not in (claim.treatment, claim.control)
        ):
            continue
        mine = [r for r in complete if r.study == claim.study]
        undone = next(a for a in (claim.treatment, claim.control) if a != BASELINE)
        # Its seeds go on from those it has, with the settings of the sweep that ran its first
        # seed (not a more-seeds sweep, whose directory would name the next one after itself).
        of_arm = [r for r in mine if r.arm == undone]
        origin = Path(min(of_arm, key=lambda r: int(r.params.get("seed", 0))).sweep)
        found.append(
            Candidate(
                row.key,
                1 + max(int(r.params.get("seed", 0)) for r in of_arm),
                row.n,
                row.seeds_for_power,
                undone,
                origin,
                arm_seconds(mine, undone),
                arm_seconds(mine, BASELINE),
            )
        )
    return sorted(found, key=lambda c: cost([c]))


def sweep_lines(chosen: Sequence[Candidate]) -> list[list[Candidate]]:
    """The candidates one sweep runs together: those of one sweep directory whose new seeds start
    at the same seed, so that they share the baseline's runs and none re-runs a seed it has."""
    groups: dict[tuple[Path, int], list[Candidate]] = {}
    for candidate in chosen:
        groups.setdefault((candidate.sweep, candidate.first_seed), []).append(candidate)
    return [groups[key] for key in sorted(groups)]


def new_seeds(mine: Sequence[Candidate]) -> range:
    """The seeds one sweep adds: from the first its arms lack to the last any needs."""
    return range(mine[0].first_seed, max(c.end_seed for c in mine))


def cost(chosen: Sequence[Candidate]) -> float:
    """Seconds of the plan's runs: per sweep, every chosen arm and the baseline (shared) on its
    new seeds."""
    total = 0.0
    for mine in sweep_lines(chosen):
        arms = {c.arm: c.arm_seconds for c in mine}
        total += len(new_seeds(mine)) * (mine[0].baseline_seconds + sum(arms.values()))
    return total


def plan(found: Sequence[Candidate], budget_seconds: float) -> list[Candidate]:
    """The candidates, cheapest first, as long as the plan's cost stays within the budget."""
    chosen: list[Candidate] = []
    for candidate in found:
        if cost([*chosen, candidate]) <= budget_seconds:
            chosen.append(candidate)
    return chosen


def sweep_arguments(chosen: Sequence[Candidate]) -> list[str]:
    """One `python -m alexlab.sweep` argument line per sweep: the sweep.yaml of the directory its
    arms came from, the chosen arms and the baseline, the new seeds, into a directory named for
    the arms beside it (a sweep directory takes no other arms later)."""
    lines = []
    for mine in sweep_lines(chosen):
        sweep = mine[0].sweep
        undone = sorted({c.arm for c in mine})
        seeds = ",".join(str(s) for s in new_seeds(mine))
        lines.append(
            f"{sweep / 'sweep.yaml'} --dir {sweep}-more_seeds-{'-'.join(undone)} "
            f"--set {ABLATION}=[{','.join([BASELINE, *undone])}] --set seed=[{seeds}]"
        )
    return lines


def more_seeds_report(directories: Sequence[Path], budget_minutes: float, out: Path) -> str:
    """Writes the plan to `out`.md and returns the sweeps' argument lines, one per line."""
    runs, evaluations = find_evidence(directories)
    found = candidates(judge(runs, evaluations, *studies.claims_and_plans()), runs)
    chosen = plan(found, 60 * budget_minutes)
    rows = [
        [
            c.key,
            c.seeds,
            c.needed,
            f"{cost([c]) / 60:.0f}",
            f"yes: `seeds: {c.plan}`" if c in chosen else "no (over the budget)",
        ]
        for c in found
    ]
    lines = sweep_arguments(chosen)
    report = (
        f"# A confirmation on fresh seeds, within {budget_minutes:g} minutes of machine time\n\n"
        f"Inconclusive ablation rows that {MAX_SEEDS} seeds or fewer could decide (80% power at "
        "the paper's size, from our spread), cheapest first. A row's seeds so far are its pilot: "
        "they set the confirmation's n and do not count in it. Before its runs, write each "
        "planned row's `seeds` into its claim in its study's file (studies/), and commit: the "
        "ledger then judges the claim on those seeds alone.\n\n"
        + markdown_table(["claim", "pilot seeds", "needed", "minutes alone", "planned"], rows)
        + f"\nThe plan: {cost(chosen) / 60:.0f} minutes; then its sweeps:\n\n"
        + "".join(f"    python -m alexlab.sweep {line}\n" for line in lines)
    )
    write_table(out, report)
    return "\n".join(lines)
