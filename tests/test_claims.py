"""The claims ledger: its intervals against textbook numbers, its verdicts, and the committed
table, which must be what the committed runs give."""

import json
import math

import pytest
from conftest import REPO

from alexlab.claims import CLAIMS
from alexlab.report.claims import claims_report
from alexlab.report.stats import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Interval,
    ratio_interval,
    t_interval,
    verdict,
)

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
    same = ratio_interval([3.0, 3.0, 3.0])
    assert (same.low, same.mean, same.high) == pytest.approx((3.0, 3.0, 3.0))


@pytest.mark.parametrize(
    "low, high, no_effect, expected",
    [
        (0.2, 1.5, 0.0, REPRODUCED),  # all of it on the paper's side
        (-0.4, 1.5, 0.0, INCONCLUSIVE),  # spans no effect
        (-2.0, -0.1, 0.0, NOT_REPRODUCED),  # all of it on the other side
        (1.1, 9.0, 1.0, REPRODUCED),  # a ratio: no effect is 1x
        (0.5, 0.9, 1.0, NOT_REPRODUCED),
    ],
)
def test_verdict_follows_the_interval(low, high, no_effect, expected):
    assert verdict(Interval((low + high) / 2, low, high, 3), no_effect) == expected


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
    } <= keys
    assert len(keys) == len(CLAIMS)


def test_committed_claims_table_is_what_the_committed_runs_give(tmp_path):
    out = tmp_path / "claims"
    report = claims_report([RESULTS / "sweeps"], out)
    assert report == (RESULTS / "claims.md").read_text()
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(
        (RESULTS / "claims.json").read_text()
    )
    table = report[report.index("| claim |") : report.index("\n## ")]
    assert table in (REPO / "README.md").read_text()  # the README shows this very table
    rows = json.loads(out.with_suffix(".json").read_text())
    assert {row["data"] for row in rows} >= {"ImageNet", "Fashion-MNIST (proxy)"}
    measured = [row for row in rows if row["verdict"] != "not run here"]
    assert measured and all(row["seeds"] >= 3 for row in measured)
