"""The claims ledger: its intervals against textbook numbers, its verdicts, and the committed
table, which must be what the committed runs give."""

import json
import math
import re
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO

from alexlab import studies
from alexlab.errors import UserError
from alexlab.metric_keys import TEST_ERR_TOP1
from alexlab.report import figure1, seeds
from alexlab.report.claims import (
    HOW_TO_READ,
    claim_verdict,
    claims_report,
    finding,
    judge,
    mechanism,
)
from alexlab.report.runs import Run, epochs_to
from alexlab.report.stats import (
    DIRECTION_ONLY,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_RUN,
    NOT_TESTABLE,
    REPRODUCED,
    Interval,
    family_verdict,
    holm,
    paired_images,
    ratio_interval,
    seeds_for_power,
    t_interval,
    verdict,
)

CLAIMS = studies.claims()
CLAIM = {claim.key: claim for claim in CLAIMS}

RESULTS = REPO / "results"


def test_t_interval_of_three_seeds_matches_the_t_table():
    # Student's t for 2 degrees of freedom, 97.5th percentile: 4.303 (any t-table); the mean of
    # 1, 2, 3 is 2 with standard deviation 1, so the half-width is 4.303 / sqrt(3) = 2.484.
    interval = t_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.low == pytest.approx(2 - 2.484, abs=1e-3)
    assert interval.high == pytest.approx(2 + 2.484, abs=1e-3)
    # Ten values: t(9) = 2.262, standard deviation of 0..9 is 3.028, half-width 2.166.
    ten = t_interval([float(v) for v in range(10)])
    assert ten.high - ten.mean == pytest.approx(2.166, abs=1e-3)


def test_ratio_interval_is_symmetric_in_log_space():
    # 2x and 8x: geometric mean 4x. Two values: t(1) = 12.706; ln 2 and ln 8 have standard
    # deviation ln(4) / sqrt(2), so the log half-width is 12.706 * ln(4) / sqrt(2) / sqrt(2).
    interval = ratio_interval([2.0, 8.0])
    assert interval.mean == pytest.approx(4.0)
    assert interval.high / interval.mean == pytest.approx(interval.mean / interval.low)
    assert math.log(interval.high / interval.mean) == pytest.approx(12.706 * math.log(4) / 2, 1e-4)
    same = ratio_interval([3.0, 3.0, 3.0])  # no spread to estimate from: no interval, no p
    assert (same.low, same.mean, same.high) == (0.0, pytest.approx(3.0), math.inf)
    assert math.isnan(same.p)


def test_t_test_p_value_matches_the_closed_form_for_two_degrees_of_freedom():
    # For 2 degrees of freedom the t CDF is 1/2 + t / (2 sqrt(2 + t^2)). 1, 2, 3 against 0:
    # t = 2 / (1 / sqrt 3) = 3.4641, so p = 2 (1/2 - 3.4641 / (2 sqrt 14)) = 0.07418.
    assert t_interval([1.0, 2.0, 3.0]).p == pytest.approx(0.07418, abs=1e-5)
    assert t_interval([1.0, 2.0, 3.0], no_effect=2.0).p == pytest.approx(1.0)


@pytest.mark.parametrize(
    "low, high, no_effect, sizes, expected",
    [
        (0.2, 1.5, 0.0, (1.4, 1.4), REPRODUCED),  # the paper's side, and the paper's 1.4 inside
        (0.2, 1.0, 0.0, (1.4, 1.4), DIRECTION_ONLY),  # the paper's side, 1.4 excluded
        (0.5, 1.2, 0.0, (1.5, 2.5), DIRECTION_ONLY),  # "about 2": 1.5-2.5, all above 1.2
        (1.3, 3.0, 0.0, (1.5, 2.5), REPRODUCED),
        (1.3, 3.0, 0.0, (1.0, math.inf), REPRODUCED),  # "over 1 point"
        (0.2, 0.8, 0.0, (1.0, math.inf), DIRECTION_ONLY),
        (0.2, 0.8, 0.0, None, REPRODUCED),  # the paper gives no size: the side decides
        (-0.4, 1.5, 0.0, (1.4, 1.4), INCONCLUSIVE),  # spans no effect
        (-2.0, -0.1, 0.0, (1.4, 1.4), NOT_REPRODUCED),  # all of it on the other side
        (0.98, 2.07, 1.0, (4.0, 9.0), INCONCLUSIVE),  # a ratio: no effect is 1x
        (1.15, 2.01, 1.0, (4.0, 9.0), DIRECTION_ONLY),  # faster, but nowhere near 6x
        (4.5, 12.0, 1.0, (4.0, 9.0), REPRODUCED),
        (0.5, 0.9, 1.0, (4.0, 9.0), NOT_REPRODUCED),
    ],
)
def test_verdict_judges_direction_and_size(low, high, no_effect, sizes, expected):
    assert verdict(Interval((low + high) / 2, low, high, 3), no_effect, sizes) == expected


def test_the_ledger_declares_the_papers_sizes():
    assert CLAIM["relu_speedup"].paper_sizes == pytest.approx((4.0, 9.0))  # ~6x, within 1.5x
    assert CLAIM["pca_lighting"].paper_sizes == (1.0, math.inf)  # "over 1 point"
    assert CLAIM["remove_conv3"].paper_sizes == (1.5, 2.5)  # "about 2 points"
    assert CLAIM["lrn_top1"].paper_sizes == (1.4, 1.4)
    assert CLAIM["dropout_overfitting"].paper_sizes is None  # no number


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (85.0, 90.0, NOT_REPRODUCED),  # far worse than the paper's 40.7%
        (38.0, 41.0, REPRODUCED),  # as good as 40.7%, within the declared point
        (30.0, 36.0, REPRODUCED),  # better than the paper's
        (39.0, 44.0, INCONCLUSIVE),  # could be either side of 41.7%
    ],
)
def test_single_cnn_is_judged_against_the_papers_error(low, high, expected):
    interval = Interval((low + high) / 2, low, high, 3)
    assert claim_verdict(CLAIM["single_cnn"], interval) == expected


def test_holm_adjusts_as_the_textbook():
    # Sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the 0.06 before it.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert family_verdict(REPRODUCED, 0.06) == INCONCLUSIVE  # its side does not survive
    assert family_verdict(DIRECTION_ONLY, 0.01) == DIRECTION_ONLY
    assert family_verdict(INCONCLUSIVE, 0.01) == INCONCLUSIVE


def test_undefined_numbers_judge_nothing():
    # An interval with no bounds (NaN) is no evidence either way, the single CNN's included.
    nan = Interval(math.nan, math.nan, math.nan, 3)
    assert verdict(nan, 0.0, (1.4, 1.4)) == INCONCLUSIVE
    assert claim_verdict(CLAIM["single_cnn"], nan) == INCONCLUSIVE
    # A NaN or infinite value gives NaN, not an exception; values that do not vary give no
    # interval and no p (their spread, 0, estimates nothing), not p = 0.
    assert math.isnan(t_interval([1.0, math.nan, 2.0]).mean)
    assert math.isnan(t_interval([1.0, math.inf]).low)
    flat = t_interval([2.0, 2.0, 2.0])
    assert (flat.mean, flat.low, flat.high) == (2.0, -math.inf, math.inf) and math.isnan(flat.p)
    assert verdict(flat, 0.0) == INCONCLUSIVE
    # A NaN p tested nothing: it neither survives Holm nor raises the others' m (2, not 3).
    assert holm([0.01, math.nan, 0.04]) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)
    assert family_verdict(REPRODUCED, math.nan) == INCONCLUSIVE


@pytest.mark.parametrize(
    "unit, effect, tolerance, message",
    [
        ("points", -1.4, 0.0, "paper_effect: -1.4 is not on the paper's side of no effect (0)"),
        ("x", 0.5, 0.0, "paper_effect: 0.5 is not on the paper's side of no effect (1)"),
        ("x", 6.0, 0.5, "tolerance: 0.5; valid: a factor of at least 1, or 0"),
        ("points", 1.4, -1.0, "tolerance: -1.0; valid: 0 or more"),
    ],
)
def test_a_size_on_the_wrong_side_or_a_shrinking_tolerance_is_refused(
    tmp_path, unit, effect, tolerance, message
):
    claim = {"claim": "c", "source": "s", "paper": "p", "paper_data": "cifar10"}
    claim |= {"measure": "difference", "treatment": "tanh", "control": "relu"}
    claim |= {"metric": TEST_ERR_TOP1, "unit": unit, "paper_effect": effect}
    claim |= {"tolerance": tolerance}
    study = {"title": "t", "arms_by": "model.activation", "arms": ["relu", "tanh"]}
    (tmp_path / "mine.yaml").write_text(json.dumps(study | {"claims": {"c": claim}}))
    with pytest.raises(UserError, match=re.escape(message)):
        studies.load("mine", [tmp_path])


def test_an_inconclusive_row_clear_of_the_papers_size_says_it_excludes_it():
    # remove_conv3 counts 1.5-2.5 points as the paper's "about 2": [-2.3, 0.7] is clear of it,
    # [-0.5, 1.6] reaches it; both span no effect. By hand, no power where the size is excluded.
    clear = finding(
        CLAIM["remove_conv3"], "fashion_mnist", Interval(-0.8, -2.3, 0.7, 7, 0.3, 2.0), ""
    )
    reaches = finding(
        CLAIM["remove_conv3"], "fashion_mnist", Interval(0.5, -0.5, 1.6, 7, 0.3, 2.0), ""
    )
    assert (clear.verdict, clear.paper_size_excluded, clear.seeds_for_power) == (
        INCONCLUSIVE,
        True,
        None,
    )
    assert (reaches.verdict, reaches.paper_size_excluded) == (INCONCLUSIVE, False)
    assert reaches.seeds_for_power == seeds_for_power(2.0, 2.0) == 10


def test_seeds_for_power_match_the_one_sample_t_test_tables():
    # One-sample two-sided t-test at 5%, 80% power (Cohen's tables, G*Power): an effect of one
    # standard deviation needs 10 units, half a standard deviation 34.
    assert seeds_for_power(spread=2.0, effect=2.0) == 10
    assert seeds_for_power(spread=2.0, effect=1.0) == 34
    assert seeds_for_power(spread=0.0, effect=1.0) is None  # no spread to go on


def test_paired_images_is_mcnemar_with_the_wald_interval():
    # 1000 images: a alone wrong on 30, b alone wrong on 10, both wrong on 100.
    a = np.zeros(1000, bool)
    b = np.zeros(1000, bool)
    a[:30] = True
    b[30:40] = True
    a[40:140] = b[40:140] = True
    found = paired_images(a, b)
    assert found.mean == pytest.approx(2.0)  # (30 - 10) / 1000, in points
    # Exact McNemar: 10 or fewer of 40 discordant images on one side, two-sided, by hand.
    p = 2 * sum(math.comb(40, k) for k in range(11)) / 2**40
    assert found.p == pytest.approx(p)
    # Wald: sqrt(30 + 10 - 20^2 / 1000) / 1000 = 0.006293, x 1.96 = 1.233 points.
    assert (found.low, found.high) == pytest.approx((2 - 1.2334, 2 + 1.2334), abs=1e-3)
    assert found.n == 1000


def test_crossing_is_interpolated_between_window_middles():
    # Windows of half an epoch: middles 0.25, 0.75, 1.25 with errors 60%, 40%, 20%. 30% lies
    # halfway between the second and third: 1.0 epochs (the first check below it says 1.5).
    curve = [(0.5, 0.6), (1.0, 0.4), (1.5, 0.2)]
    assert epochs_to(curve, 0.3) == pytest.approx(1.0)
    assert epochs_to(curve, 0.4) == pytest.approx(0.75)
    assert epochs_to(curve, 0.7) == pytest.approx(0.25)  # the first window is already below
    assert math.isnan(epochs_to(curve, 0.1))


def test_the_ledger_holds_every_claim_the_paper_makes_that_alexlab_tests():
    keys = {claim.key for claim in CLAIMS}
    assert {
        "relu_speedup",
        "lrn_top1",
        "lrn_top5",
        "overlapping_pooling",
        "pca_lighting",
        "two_columns",
        "remove_conv3",
        "remove_conv4",
        "dropout_iterations",
        "dropout_overfitting",
        "lrn_cifar",
        "single_cnn",
        "ensemble",
        # Section 5, 4.1, 3.4, 3.2 and Table 1's footnote:
        "weight_decay_training",
        "ones_bias",
        "ten_patches",
        "crops_flips_overfitting",
        "pooling_overfitting",
        "two_columns_time",
    } <= keys
    assert len(keys) == len(CLAIMS)


VERDICTS = (NOT_REPRODUCED, REPRODUCED, DIRECTION_ONLY, INCONCLUSIVE, NOT_TESTABLE, NOT_RUN)
VERDICT_COUNT = re.compile(r"(\d+) (" + "|".join(VERDICTS) + ")")


def assert_readme_summarises(rows: list[dict]) -> None:
    """The README links the ledger and sums it up; every count in its summary is the regenerated
    ledger's, so a stale summary fails here."""
    readme = (REPO / "README.md").read_text()
    assert "](results/claims.md)" in readme and "](docs/verdicts.md)" in readme
    start = readme.index("## The claims ledger")
    summary = " ".join(readme[start : readme.index("\n## ", start + 1)].split())  # unwrapped
    counted = {verdict: int(n) for n, verdict in VERDICT_COUNT.findall(summary)}
    assert counted == Counter(row["verdict"] for row in rows), summary
    claims = len({row["key"] for row in rows})
    assert f"Its {len(rows)} rows are {claims} claims" in summary
    proxy = [row for row in rows if row["data"].endswith("(proxy)")]
    assert f"{len(proxy)} rows on {proxy[0]['data']}" in summary
    # Holm: the rows whose side survives the family's correction, each named with its p.
    kept = [
        row for row in rows if row["family_verdict"] in (REPRODUCED, NOT_REPRODUCED, DIRECTION_ONLY)
    ]
    assert f"{len(kept)} row{'s' if len(kept) != 1 else ''} keep" in summary
    for row in kept:
        assert row["claim"] in summary and f"adjusted p {row['holm_p']:.3g}" in summary
    # The headline counts Holm's verdicts; the rows that exclude the paper's size are named.
    tested = [row for row in rows if row["verdict"] not in (NOT_RUN, NOT_TESTABLE)]
    held = Counter(row["family_verdict"] for row in tested)[INCONCLUSIVE]
    assert "The headline counts Holm's verdicts" in summary
    assert f"of the {len(tested)} rows that tested their claim" in summary
    assert f"the other {held} are inconclusive" in summary
    excluded = [row for row in rows if row["paper_size_excluded"]]
    assert f"{['no', 'one', 'two', 'three'][len(excluded)]} of the inconclusive rows" in summary
    figure1 = next(r for r in proxy if r["key"] == "relu_speedup")
    assert f"{figure1['ours']}, *{figure1['verdict']}*" in summary


def test_committed_claims_table_is_what_the_committed_runs_give(tmp_path):
    out = tmp_path / "claims"
    report = claims_report([RESULTS / "sweeps"], out)
    assert report == (RESULTS / "claims.md").read_text()
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(
        (RESULTS / "claims.json").read_text()
    )
    assert HOW_TO_READ in report
    rows = json.loads(out.with_suffix(".json").read_text())
    assert_readme_summarises(rows)
    assert {row["data"] for row in rows} >= {"ImageNet", "Fashion-MNIST (proxy)"}
    measured = [row for row in rows if row["n"]]
    assert measured and all(row["n"] >= 3 for row in measured)
    # No row reads reproduced unless its interval reaches the paper's size (or has no size).
    for row in rows:
        if row["verdict"] == REPRODUCED and row["paper_sizes"] and row["key"] != "single_cnn":
            low, high = row["paper_sizes"]
            assert row["low"] <= (math.inf if high is None else high) and row["high"] >= low
    # Every proxy row of a claim with a mechanism check carries the measured check.
    checked = {claim.key for claim in CLAIMS if claim.check}
    for row in rows:
        if row["key"] in checked and row["data"].endswith("(proxy)"):
            assert row["check"].startswith(("holds: ", "fails: ")), row["key"]
            assert (row["verdict"] == NOT_TESTABLE) == row["check"].startswith("fails: ")


def fake_run(activation: str, lr: float, seed: int, epochs_to_half: float) -> Run:
    """A run whose training error falls linearly from 90% at 0 epochs through 50%."""
    slope = 0.4 / epochs_to_half
    checks = [i / 10 for i in range(1, 101)]
    curve = [(e, max(0.9 - slope * (e - 0.05), 0.05)) for e in checks]
    params = {"model.activation": activation, "optim.lr": lr, "seed": seed}
    config = {"train": {"target_error": 0.5}}
    return Run(
        f"{activation}-{lr}-{seed}",
        params,
        "finished",
        {},
        1.0,
        Path("."),
        config=config,
        curve=curve,
    )


def test_figure1_chooses_each_rate_on_the_selection_seeds_and_measures_on_the_others():
    runs = [fake_run("relu", 0.1, seed, 1.0) for seed in (0, 1, 2)]
    runs += [fake_run("relu", 0.2, seed, 2.0) for seed in (0, 1, 2)]
    runs += [fake_run("tanh", 0.5, seed, 3.0) for seed in (0, 1, 2)]
    # Measured seeds: 0.2 would look far faster on them, which must not move the choice.
    runs += [
        fake_run("relu", 0.2, 3, 0.1),
        fake_run("relu", 0.1, 3, 1.5),
        fake_run("tanh", 0.5, 3, 6.0),
    ]
    assert figure1.chosen_rates(runs, 0.5) == {"relu": 0.1, "tanh": 0.5}
    [found] = figure1.speedups(runs, [0.5])
    assert [r.params["seed"] for r in found.runs["relu"]] == [3]
    assert found.ratios == pytest.approx([6.0 / 1.5])  # the measured seed's own crossing times


def test_more_seeds_plans_a_confirmation_on_fresh_seeds_sharing_the_baselines_runs():
    sweep = Path("results/sweeps/ablations-fashion_mnist")

    def candidate(key, arm, needed, arm_seconds):  # seeds 0-2 run, the pilot: the next is 3
        return seeds.Candidate(key, 3, 3, needed, arm, sweep, arm_seconds, 100.0)

    conv3 = candidate("remove_conv3", "no_conv3", 6, 80.0)
    pooling = candidate("overlapping_pooling", "plain_pooling", 5, 120.0)
    # The pilot's seeds do not count: all the needed seeds are new. Alone: 6 x (100 + 80) s =
    # 1080 s for seeds 3-8; 5 x (100 + 120) = 1100 s for seeds 3-7.
    assert (conv3.plan, pooling.plan) == ([3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 7])
    assert seeds.cost([conv3]) == 1080 and seeds.cost([pooling]) == 1100
    # Together, seeds 3-8 for all three arms: 6 x (100 + 80 + 120) = 1800 s, not 1080 + 1100.
    assert seeds.cost([conv3, pooling]) == 1800
    assert seeds.plan([conv3, pooling], budget_seconds=1800) == [conv3, pooling]
    assert seeds.plan([conv3, pooling], budget_seconds=1799) == [conv3]
    [line] = seeds.sweep_arguments([pooling, conv3])
    assert line == (
        f"{sweep}/sweep.yaml --dir {sweep}-more_seeds-no_conv3-plain_pooling "
        "--set ablation=[baseline,no_conv3,plain_pooling] --set seed=[3,4,5,6,7,8]"
    )
    # An arm that already has seeds 3-6 goes on from 7 in a sweep of its own: it re-runs none.
    columns = seeds.Candidate("two_columns", 7, 7, 9, "one_column", sweep, 60.0, 100.0)
    assert seeds.cost([conv3, columns]) == 1080 + 9 * (100 + 60)
    assert seeds.sweep_arguments([conv3, columns])[1] == (
        f"{sweep}/sweep.yaml --dir {sweep}-more_seeds-one_column "
        "--set ablation=[baseline,one_column] --set seed=[7,8,9,10,11,12,13,14,15]"
    )


def arm_run(tmp_path: Path, arm: str, seed: int, **fields: Any) -> Run:
    params = {"ablation": arm, "seed": seed}
    results = fields.pop("results", {})
    return Run(f"{arm}-{seed}", params, "finished", results, 1.0, tmp_path, arm=arm, **fields)


def test_mechanism_checks_hold_on_every_seed(tmp_path):
    # LRN's share: each layer's mean over the logged steps, the most active layer's counts, and
    # the check reads the run whose share is lowest.
    history = [{"step": 0, "lrn/share/norm1": 0.30, "lrn/share/norm2": 0.01}]
    history += [{"step": 5, "train/loss": 2.3}]
    history += [{"step": 50, "lrn/share/norm1": 0.10, "lrn/share/norm2": 0.03}]
    active = arm_run(tmp_path, "baseline", 0, history=history)  # 20%
    text, holds = mechanism(CLAIM["lrn_top1"], "fashion_mnist", [active])
    assert (text, holds) == (
        "holds: LRN's neighbour term: 20.0% of its normalizer at its lowest seed",
        True,
    )
    quiet = arm_run(tmp_path, "baseline", 1, history=[{"step": 0, "lrn/share/norm1": 0.09}])
    assert mechanism(CLAIM["lrn_top1"], "fashion_mnist", [active, quiet]) == (
        "fails: LRN's neighbour term: 9.0% of its normalizer at its lowest seed",
        False,
    )  # the mean, 14.5%, would pass
    # Overfitting: the arm without the choice must end 5 points above its training error, on
    # every seed, both errors of the final net in eval mode.
    overfit = [
        arm_run(tmp_path, "no_dropout", seed, results={"test/err_top1": test, **train_eval})
        for seed, test in ((0, 0.16), (1, 0.14))
        for train_eval in [{"train_eval/err_top1": 0.10, "train/err_top1": 0.20}]
    ]
    text, holds = mechanism(CLAIM["dropout_overfitting"], "fashion_mnist", overfit)
    assert not holds and text == (
        "fails: no_dropout overfits by 4.0 points at its lowest seed (held-out - training error, "
        "eval mode)"
    )
    assert mechanism(CLAIM["dropout_overfitting"], "fashion_mnist", overfit[:1])[1] is True
    assert mechanism(CLAIM["pca_lighting"], "fashion_mnist", [active])[1] is False
    assert mechanism(CLAIM["pca_lighting"], "cifar10", [active])[1] is True


def test_weight_decay_check_reads_the_weights_norm_by_seed(tmp_path):
    claim = CLAIM["weight_decay_training"]
    assert (claim.check.measure, claim.check.threshold) == (studies.WEIGHT_SHRINK, 0.1)

    def norms(with_decay: float, without: float, seed: int) -> list[Run]:
        return [
            arm_run(tmp_path, "baseline", seed, results={"train/weight_norm": with_decay}),
            arm_run(tmp_path, "no_weight_decay", seed, results={"train/weight_norm": without}),
        ]

    # Seed 0: 8.8 against 10, 12% smaller; seed 1: 16 against 20, 20%.
    acting = norms(8.8, 10.0, 0) + norms(16.0, 20.0, 1)
    text, holds = mechanism(claim, "fashion_mnist", acting)
    assert holds and text == "holds: decay shrinks the weights' norm by 12.0% at its lowest seed"
    idle = acting + norms(9.9, 10.0, 2)  # 1% on seed 2
    assert mechanism(claim, "fashion_mnist", idle) == (
        "fails: decay shrinks the weights' norm by 1.0% at its lowest seed",
        False,
    )


def test_a_smoothed_crossing_reads_the_trailing_epochs_mean():
    # Windows of a quarter epoch, errors 60, 20, 60, 20, 20, 20%. One window: 20% at the second
    # (middle 0.375) crosses 30% at 0.125 + 0.3 / 0.4 * 0.25 = 0.3125 epochs. Over the trailing
    # epoch the means are 60, 40, 46.7, 40% (from 0) and then (20 + 60 + 20 + 20) / 4 = 30% over
    # 0.25-1.25, middle 0.75: the crossing is at 0.75, between (0.5, 40%) and (0.75, 30%).
    curve = [(0.25, 0.6), (0.5, 0.2), (0.75, 0.6), (1.0, 0.2), (1.25, 0.2), (1.5, 0.2)]
    assert epochs_to(curve, 0.3) == pytest.approx(0.3125)
    assert epochs_to(curve, 0.3, smoothing=1.0) == pytest.approx(0.75)
    assert math.isnan(epochs_to(curve, 0.1, smoothing=1.0))
    assert {CLAIM["dropout_iterations"].smoothing, CLAIM["ones_bias"].smoothing} == {1.0}


def test_seeds_outside_the_studys_plan_are_listed_and_not_counted(tmp_path):
    # overlapping_pooling, planned on seeds 0-2; seed 3 was added after a look.
    claim = CLAIM["overlapping_pooling"]
    config = {"data": {"_target_": "alexlab.data.fashion_mnist.FashionMNISTDataModule"}}
    errors = {0: (0.12, 0.10), 1: (0.11, 0.10), 2: (0.13, 0.10), 3: (0.20, 0.10)}
    runs = [
        arm_run(tmp_path, arm, seed, results={TEST_ERR_TOP1: error}, config=config)
        for seed, pair in errors.items()
        for arm, error in zip(("plain_pooling", "baseline"), pair, strict=True)
    ]
    runs.append(arm_run(tmp_path, "baseline", 4, results={TEST_ERR_TOP1: 0.1}, config=config))
    for run in runs:
        run.study = "ablations"
    [paper, row] = judge(runs, [], [claim], {"ablations": (0, 1, 2)})
    assert paper.verdict == NOT_RUN
    # Differences 2, 1, 3 points: mean 2, sd 1, t(0.975, 2) = 4.303: 2 -+ 4.303 / sqrt(3).
    assert (row.n, row.effect) == (3, pytest.approx(2.0))
    assert (row.low, row.high) == pytest.approx((2 - 4.303 / 3**0.5, 2 + 4.303 / 3**0.5), abs=1e-3)
    # Seed 4 has a baseline alone: it pairs with nothing and would not have counted either.
    assert row.unplanned_seeds == [3] and row.with_unplanned.startswith("4.0 points")
    own = judge(runs, [], [replace(claim, seeds=(1, 2, 3))], {"ablations": (0, 1, 2)})[1]
    # Its own plan, seeds 1-3: differences 1, 3 and 10 points.
    assert (own.n, own.effect, own.unplanned_seeds) == (3, pytest.approx(14 / 3), [0])
    [_, unplanned_counted] = judge(runs, [], [claim], {})  # a study without a plan: every seed
    assert unplanned_counted.n == 4 and not unplanned_counted.unplanned_seeds


def test_runs_whose_metric_was_renamed_fail_the_ledger_naming_run_and_key(tmp_path):
    # As if the module logged test/err_top1 under another name: the ledger's runs are there,
    # their key is not, and that is one error line, never rows of "not run here".
    sweeps = tmp_path / "sweeps"
    shutil.copytree(RESULTS / "sweeps", sweeps)
    for path in sweeps.rglob("results.json"):
        results = json.loads(path.read_text())
        if TEST_ERR_TOP1 in results:  # the overfitting study's runs have no test
            results["test/top1_error"] = results.pop(TEST_ERR_TOP1)
            path.write_text(json.dumps(results))
    with pytest.raises(UserError) as refused:
        claims_report([sweeps], tmp_path / "claims")
    assert re.fullmatch(
        rf"{sweeps}/[^ ]+: no {TEST_ERR_TOP1} among its results \(.*test/top1_error.*\): a run "
        r"of another version of alexlab, or a metric renamed \(alexlab/metric_keys.py\)",
        str(refused.value),
    ), refused.value
    assert not (tmp_path / "claims.md").exists()


def test_a_ledger_that_cannot_be_written_whole_writes_nothing(tmp_path, monkeypatch):
    from alexlab.report import claims as ledger

    judged = ledger.judge

    def unwritable(*args):
        rows = judged(*args)
        rows[0].check = np.float32(1.0)  # no JSON for it: the .json cannot be written
        return rows

    monkeypatch.setattr(ledger, "judge", unwritable)
    with pytest.raises(TypeError):
        claims_report([RESULTS / "sweeps"], tmp_path / "claims")
    assert not list(tmp_path.iterdir())  # not claims.md alone
