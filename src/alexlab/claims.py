"""The paper's claims that alexlab can test, as data: where the paper makes each, what it compares,
the quantity, the paper's direction and size, the data it was made on, and the condition under
which a proxy run tests the paper's mechanism. `python -m alexlab.report claims DIR...` finds each
claim's runs in DIR and gives it a verdict (src/alexlab/report/claims.py); ../shared/PAPER.md has
the sources of the numbers.

Every effect is oriented so that the paper's direction is positive: an ablation's change in error
is `undone - paper's choice` (the choice helps when it is > 0), a speed ratio is `slow / fast`
(> 1). A claim's runs are those whose sweep parameters match `runs` (ANY: the parameter is swept,
any value; ABSENT: runs without it). Sizes, tolerances and thresholds are fixed here, before the
runs they judge.
"""

from dataclasses import dataclass, field
from typing import Any

from alexlab.metric_keys import TEST_ERR_TOP1, TEST_ERR_TOP5, TRAIN_ERR_TOP1

# What each kind of measure computes (src/alexlab/report/claims.py):
DIFFERENCE = "difference"  # metric(treatment) - metric(control), in points, paired by seed
GAP_DIFFERENCE = "gap difference"  # (val - training error) of treatment - of control, by seed
SPEEDUP = "speedup"  # Figure 1: tanh / ReLU epochs to the target, rates chosen on other seeds
EPOCHS_RATIO = "epochs ratio"  # epochs to a fixed training error: treatment / control, by seed
SECONDS_RATIO = "seconds ratio"  # training time: treatment / control, by seed
ENSEMBLE_GAIN = "ensemble gain"  # one net's test error - the ensemble's, per test image
ERROR_VALUE = "error value"  # our test error itself, against the paper's

# What a mechanism check measures on a claim's runs (src/alexlab/report/claims.py):
LRN_SHARE = "lrn share"  # LRN's neighbour term's share of its normalizer, over training
CHANNELS = "channels"  # the images' colour channels
GAP = "gap"  # an arm's final validation minus training error, in points: does it overfit?
TOP5_ROOM = "top-5 room"  # the control's top-5 error, in points: is there any to lower?
EPOCHS_TRAINED = "epochs trained"  # the runs' epochs, against the recipe's
REACHES = "reaches"  # the share of an arm's runs that reach their target training error

ANY, ABSENT = None, "<absent>"
# The ablations' runs. Two run apart (Makefile): LRN's, with a conv1 init that makes LRN normalize
# (ABLATION_lrn_...), and the overfitting claims', at a constant rate on fewer images for longer,
# so that a net without a regularizer can overfit (ABLATION_overfitting_...).
ABLATIONS = {"ablation": ANY, "model.init_std.conv1": ABSENT, "optim.scheduler": ABSENT}
LRN_ABLATIONS = {"ablation": ANY, "model.init_std.conv1": ANY}
OVERFIT_ABLATIONS = {"ablation": ANY, "optim.scheduler": ANY}

# What an ablation of the paper's ImageNet net means for the main job's alexnet_small on 28x28
# Fashion-MNIST (conf/model/alexnet_small.yaml, conf/experiment/fashion_mnist.yaml; Makefile,
# SMALL_ABLATIONS and OVERFIT_ABLATIONS).
NET = "alexnet_small (a quarter of the width, 5x5 conv1)"
SMALL = f"{NET} on 5,000 Fashion-MNIST training images, 30 epochs"
OVERFIT = (
    f"{NET} on 1,000 Fashion-MNIST training images, 200 epochs at the constant rate 0.01 (the "
    "plateau schedule cut the rate of nets still at chance)"
)
OVERFITS = 5.0  # points of validation over training error: an arm that overfits, substantially
NORMALIZES = 0.1  # LRN's neighbour term, as a share of its normalizer: LRN normalizes


@dataclass(frozen=True)
class Check:
    """The condition under which a proxy's runs test the paper's mechanism: `measure` on the runs
    (of the ablation `arm`, where it names one) must reach `threshold`."""

    condition: str  # in words
    measure: str  # one of the checks above
    threshold: float
    arm: str = ""


@dataclass(frozen=True)
class Claim:
    key: str
    claim: str  # the paper's statement, shortened
    source: str  # section, table or figure
    paper: str  # the paper's number, as it gives it
    paper_data: str  # the dataset the paper made it on: imagenet | cifar10
    measure: str  # one of the measures above
    runs: dict[str, Any]  # the sweep parameters that pick its runs
    options: dict[str, Any] = field(default_factory=dict)  # the measure's by/treatment/control...
    unit: str = "points"  # of the effect: points (of error) or x (a ratio)
    paper_effect: float | None = None  # the paper's effect in that unit, where it gives one
    # Sizes that count as the paper's: within `tolerance` of paper_effect (points; a factor for
    # x), or anything from paper_effect up when the paper says "over" (at_least).
    tolerance: float = 0.0
    at_least: bool = False
    proxy: str = ""  # what the comparison means on the small datasets run here
    check: Check | None = None  # on a proxy, the condition for testing the paper's mechanism

    @property
    def paper_sizes(self) -> tuple[float, float] | None:
        """The effects consistent with the paper's size; None: the paper gives no size."""
        if self.paper_effect is None:
            return None
        if self.at_least:
            return (self.paper_effect, float("inf"))
        if self.unit == "x":
            factor = max(self.tolerance, 1.0)
            return (self.paper_effect / factor, self.paper_effect * factor)
        return (self.paper_effect - self.tolerance, self.paper_effect + self.tolerance)


def ablation(
    key: str,
    claim: str,
    source: str,
    paper: str,
    undone: str,
    paper_effect: float | None,
    proxy: str,
    metric: str = TEST_ERR_TOP1,
    measure: str = DIFFERENCE,
    runs: dict[str, Any] = ABLATIONS,
    **details: Any,
) -> Claim:
    return Claim(
        key=key,
        claim=claim,
        source=source,
        paper=paper,
        paper_data="imagenet",
        measure=measure,
        runs=runs,
        options={"by": "ablation", "treatment": undone, "control": "baseline", "metric": metric},
        paper_effect=paper_effect,
        proxy=f"{OVERFIT if runs is OVERFIT_ABLATIONS else SMALL}; {proxy}",
        **details,
    )


def overfits(arm: str) -> Check:
    return Check(
        f"without it the net overfits: its validation error ends at least {OVERFITS:g} points "
        "above its training error",
        GAP,
        OVERFITS,
        arm,
    )


LRN_NORMALIZES = Check(
    f"LRN normalizes: at its most active layer, alpha * sum(a^2) is at least {NORMALIZES:.0%} of "
    "its normalizer k + alpha * sum(a^2), averaged over training (else it divides by a constant)",
    LRN_SHARE,
    NORMALIZES,
)
TOP5_TESTS = Check(
    "the net has top-5 error to lower: at least 1 point with the paper's choice", TOP5_ROOM, 1.0
)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="relu_speedup",
        claim="ReLU reaches the target training error ~6x sooner than tanh",
        source="§3.1, Figure 1",
        paper="6 vs 36 epochs to 25% (~6x)",
        paper_data="cifar10",
        measure=SPEEDUP,
        runs={"experiment": "relu_vs_tanh"},
        unit="x",
        paper_effect=6.0,
        tolerance=1.5,  # read off a plot: 4x to 9x are the paper's "~6x"
        proxy="layers-19pct's four-layer net, the paper's conditions (no regularization, raw "
        "pixels minus the mean, Gaussian init); one lr per activation, chosen on seeds 0-2, "
        "measured on seeds 3-7; target 18%, fixed before the runs: as far from chance to "
        "convergence as 25% on CIFAR-10 (results/relu_vs_tanh-fashion_mnist.md)",
    ),
    Claim(
        key="relu_speedup_modern",
        claim="the same, under modern conditions (not the paper's: alexlab's check)",
        source="§3.1, Figure 1",
        paper="(the paper ran only its own conditions)",
        paper_data="cifar10",
        measure=SPEEDUP,
        runs={"experiment": "relu_vs_tanh_modern"},
        unit="x",
        proxy="as above with standardized inputs and PyTorch's default init",
    ),
    ablation(
        "lrn_top1",
        "local response normalization lowers top-1 error",
        "§3.3",
        "1.4 points top-1",
        "no_lrn",
        1.4,
        "LRN as the 2012 source's (k=2, n=5, alpha=1e-4 / n, beta=0.75); conv1 drawn from "
        "N(0, 0.2), not 0.01, so that LRN normalizes",
        runs=LRN_ABLATIONS,
        check=LRN_NORMALIZES,
    ),
    ablation(
        "lrn_top5",
        "local response normalization lowers top-5 error",
        "§3.3",
        "1.2 points top-5",
        "no_lrn",
        1.2,
        "as the top-1 row; top-5 of 10 classes",
        metric=TEST_ERR_TOP5,
        runs=LRN_ABLATIONS,
        check=TOP5_TESTS,
    ),
    ablation(
        "overlapping_pooling",
        "overlapping pooling (3x3, stride 2) lowers error against plain 2x2, stride 2",
        "§3.4",
        "0.4 points top-1 (0.3 top-5)",
        "plain_pooling",
        0.4,
        "the same three pooling layers on maps of 28x28 and smaller",
    ),
    ablation(
        "pooling_overfitting",
        "overlapping pooling makes the net slightly harder to overfit",
        "§3.4",
        "'slightly more difficult to overfit' (no number)",
        "plain_pooling",
        None,
        "the rise in the gap between validation and training error with plain pooling",
        measure=GAP_DIFFERENCE,
        runs=OVERFIT_ABLATIONS,
        check=overfits("plain_pooling"),
    ),
    ablation(
        "pca_lighting",
        "PCA colour lighting lowers top-1 error",
        "§4.1",
        "over 1 point top-1",
        "no_pca_lighting",
        1.0,
        "not run on grey images",
        at_least=True,
        check=Check("the images have three colour channels to shift", CHANNELS, 3),
    ),
    ablation(
        "crops_flips_overfitting",
        "without random crops and reflections the net overfits substantially",
        "§4.1",
        "'substantial overfitting' (no number)",
        "no_crops_flips",
        None,
        "the rise in the gap between validation and training error without them",
        measure=GAP_DIFFERENCE,
        runs=OVERFIT_ABLATIONS,
        check=overfits("no_crops_flips"),
    ),
    ablation(
        "two_columns",
        "two columns (the two-GPU net) beat one of half the kernels",
        "§3.2",
        "1.7 points top-1 (1.2 top-5)",
        "one_column",
        1.7,
        "the one-column net of footnote 2 (half the kernels in conv1-4) at a quarter width",
    ),
    Claim(
        key="two_columns_time",
        claim="the two-GPU net takes slightly less time to train than the one-GPU net",
        source="§3.2",
        paper="'slightly less time' (no number)",
        paper_data="imagenet",
        measure=SECONDS_RATIO,
        runs={"ablation": ANY, "model.column_devices": ANY},
        options={"by": "ablation", "treatment": "one_column", "control": "baseline"},
        unit="x",
        proxy="needs two GPUs (model.column_devices)",
    ),
    ablation(
        "remove_conv3",
        "removing a middle layer (conv3) costs about 2 points top-1",
        "§7",
        "about 2 points top-1",
        "no_conv3",
        2.0,
        "conv3 removed",
        tolerance=0.5,  # "about 2"
    ),
    ablation(
        "remove_conv4",
        "removing a middle layer (conv4) costs about 2 points top-1",
        "§7",
        "about 2 points top-1",
        "no_conv4",
        2.0,
        "conv4 removed",
        tolerance=0.5,
    ),
    Claim(
        key="dropout_iterations",
        claim="dropout roughly doubles the iterations needed to converge",
        source="§4.2",
        paper="about 2x the iterations",
        paper_data="imagenet",
        measure=EPOCHS_RATIO,
        runs=OVERFIT_ABLATIONS,
        options={"by": "ablation", "treatment": "baseline", "control": "no_dropout"},
        unit="x",
        paper_effect=2.0,
        tolerance=1.5,  # "roughly"
        proxy=f"{OVERFIT}; epochs to the runs' target training error (train.target_error, 20%, "
        "fixed before the runs), with dropout over without",
        check=Check(
            "the net without dropout learns: every seed reaches the target training error",
            REACHES,
            1.0,
            "no_dropout",
        ),
    ),
    ablation(
        "dropout_overfitting",
        "without dropout the net overfits substantially",
        "§4.2",
        "'substantial overfitting' (no number)",
        "no_dropout",
        None,
        "the rise in the gap between validation and training error without dropout",
        measure=GAP_DIFFERENCE,
        runs=OVERFIT_ABLATIONS,
        check=overfits("no_dropout"),
    ),
    ablation(
        "weight_decay_training",
        "weight decay lowers the training error: not merely a regularizer",
        "§5",
        "'reduces the model's training error' (no number)",
        "no_weight_decay",
        None,
        "the last epoch's training error (with dropout and augmentation, as both arms train)",
        metric=TRAIN_ERR_TOP1,
    ),
    Claim(
        key="ones_bias",
        claim="biases of 1 speed up the early stages of learning",
        source="§5",
        paper="'accelerates the early stages of learning' (no number)",
        paper_data="imagenet",
        measure=EPOCHS_RATIO,
        runs=OVERFIT_ABLATIONS,
        options={
            "by": "ablation",
            "treatment": "zero_biases",
            "control": "baseline",
            "target": 0.5,
        },
        unit="x",
        proxy=f"{OVERFIT}; epochs to 50% training error (an early stage, fixed before the runs), "
        "biases of 0 over biases of 1",
    ),
    Claim(
        key="lrn_cifar",
        claim="a four-layer net gets 13% test error without LRN and 11% with it",
        source="§3.3",
        paper="2 points (13% vs 11%)",
        paper_data="cifar10",
        measure=DIFFERENCE,
        runs={"experiment": "lrn_cifar", "model.lrn": ANY},
        options={
            "by": "model.lrn",
            "treatment": "off",
            "control": "code",
            "metric": TEST_ERR_TOP1,
        },
        paper_effect=2.0,
        proxy="cuda-convnet's conv-local nets (layers-conv-local-13pct/-11pct) at lr 0.001, "
        "without the crops, flips and multi-view test of their recipe",
        check=Check(
            "the nets trained as long as the recipe's 100 epochs (the paper's ~450)",
            EPOCHS_TRAINED,
            100,
        ),
    ),
    Claim(
        key="single_cnn",
        claim="one CNN: 37.5% / 17.0% top-1 / top-5 error (ILSVRC-2010 test)",
        source="Table 1",
        paper="40.7% / 18.2% on ILSVRC-2012 val (Table 2)",
        paper_data="imagenet",
        measure=ERROR_VALUE,
        runs={"experiment": "imagenet", "ablation": ABSENT},
        options={"metric": TEST_ERR_TOP1},
        unit="%",
        paper_effect=40.7,
        tolerance=1.0,  # as good as the paper's, or within a point of it
    ),
    Claim(
        key="ten_patches",
        claim="averaging the predictions on ten patches lowers the error",
        source="Table 1 (footnote), §4.1",
        paper="39.0% -> 37.5% top-1 (18.3% -> 17.0% top-5): 1.5 points",
        paper_data="imagenet",
        measure=DIFFERENCE,
        runs={"experiment": "imagenet", "data.test_patches": ANY},
        options={
            "by": "data.test_patches",
            "treatment": 1,
            "control": 10,
            "metric": TEST_ERR_TOP1,
        },
        paper_effect=1.5,
    ),
    Claim(
        key="ensemble",
        claim="averaging the predictions of several CNNs lowers the error",
        source="Table 2",
        paper="5 CNNs 38.1% vs 1 CNN 40.7% top-1: 2.6 points",
        paper_data="imagenet",
        measure=ENSEMBLE_GAIN,
        runs={},
        paper_effect=2.6,
        tolerance=1.0,  # three nets here, five in the paper
        proxy=f"the three seeds of the ablations' baseline ({SMALL}), averaged by src/eval.py; "
        "McNemar's test over the 10,000 test images against each net, the row against the best "
        "single net (the weakest gain)",
    ),
)
