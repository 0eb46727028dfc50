"""The paper's claims that alexlab can test, as data: where the paper makes each, what it compares,
the quantity, the paper's direction and size, and the data it was made on. `python -m
alexlab.report claims DIR...` finds each claim's runs in DIR and gives it a verdict
(src/alexlab/report/claims.py); ../shared/PAPER.md has the sources of the numbers.

Every effect is oriented so that the paper's direction is positive: an ablation's change in test
error is `undone - paper's choice` (the choice helps when it is > 0), a speed ratio is `slow /
fast` (> 1). A claim's runs are those whose sweep parameters match `runs` (ANY: the parameter is
swept, any value; ABSENT: runs without it).
"""

from dataclasses import dataclass, field
from typing import Any

# What each kind of measure computes (src/alexlab/report/claims.py):
DIFFERENCE = "difference"  # metric(treatment) - metric(control), in points, paired by seed
SPEEDUP = "speedup"  # Figure 1: tanh / ReLU epochs to the target, each at its fastest rate
EPOCHS_RATIO = "epochs ratio"  # epochs to a training error: treatment / control, by seed
ENSEMBLE_GAIN = "ensemble gain"  # one net's test error - the ensemble's, over its nets
ERROR_VALUE = "error value"  # our test error itself, against the paper's

ANY, ABSENT = None, "<absent>"
ABLATIONS = {"ablation": ANY}

# What an ablation of the paper's ImageNet net means for the main job's alexnet_small on 28x28
# Fashion-MNIST (conf/model/alexnet_small.yaml, conf/experiment/fashion_mnist.yaml): 3 epochs.
SMALL = "alexnet_small (a quarter of the width, 5x5 conv1) on 28x28 Fashion-MNIST, 3 epochs"


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
    proxy: str = ""  # what the comparison means on the small datasets run here


def ablation(
    key: str,
    claim: str,
    source: str,
    paper: str,
    undone: str,
    paper_effect: float | None,
    proxy: str,
    metric: str = "test/err_top1",
) -> Claim:
    return Claim(
        key=key,
        claim=claim,
        source=source,
        paper=paper,
        paper_data="imagenet",
        measure=DIFFERENCE,
        runs=ABLATIONS,
        options={"by": "ablation", "treatment": undone, "control": "baseline", "metric": metric},
        paper_effect=paper_effect,
        proxy=f"{SMALL}; {proxy}",
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
        proxy="layers-19pct's four-layer net, the paper's conditions (no regularization, raw "
        "pixels minus the mean, Gaussian init), lr tuned per activation and seed; target 18%: "
        "as far from chance to convergence as 25% on CIFAR-10",
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
        "LRN as the paper's (k=2, n=5, alpha=1e-4, beta=0.75) after conv1 and conv2",
    ),
    ablation(
        "lrn_top5",
        "local response normalization lowers top-5 error",
        "§3.3",
        "1.2 points top-5",
        "no_lrn",
        1.2,
        "top-5 of 10 classes is near 0 for every net: no test of the claim",
        metric="test/err_top5",
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
        "pca_lighting",
        "PCA colour lighting lowers top-1 error",
        "§4.1",
        "over 1 point top-1",
        "no_pca_lighting",
        1.0,
        "grey images: the lighting noise is along the one principal component, a brightness jitter",
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
    ablation(
        "remove_conv3",
        "removing a middle layer (conv3) costs about 2 points top-1",
        "§7",
        "about 2 points top-1",
        "no_conv3",
        2.0,
        "conv3 removed",
    ),
    ablation(
        "remove_conv4",
        "removing a middle layer (conv4) costs about 2 points top-1",
        "§7",
        "about 2 points top-1",
        "no_conv4",
        2.0,
        "conv4 removed",
    ),
    Claim(
        key="dropout_iterations",
        claim="dropout roughly doubles the iterations needed to converge",
        source="§4.2",
        paper="about 2x the iterations",
        paper_data="imagenet",
        measure=EPOCHS_RATIO,
        runs=ABLATIONS,
        options={"by": "ablation", "treatment": "baseline", "control": "no_dropout"},
        unit="x",
        paper_effect=2.0,
        proxy=f"{SMALL}; epochs to the training error that every run of both reaches (the "
        "highest final error among them), with dropout over without",
    ),
    ablation(
        "dropout_overfitting",
        "without dropout the net overfits substantially",
        "§4.2",
        "'substantial overfitting' (no number)",
        "no_dropout",
        None,
        "its consequence, a higher test error without dropout (a training-test gap would need the "
        "training error with dropout off, which the runs do not log); overfitting shows late, "
        "and 3 epochs are early",
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
            "metric": "test/err_top1",
        },
        paper_effect=2.0,
        proxy="cuda-convnet's conv-local nets (layers-conv-local-13pct/-11pct) at lr 0.001, "
        "4 epochs of the recipe's 100 (the paper's nets trained ~450)",
    ),
    Claim(
        key="single_cnn",
        claim="one CNN: 37.5% / 17.0% top-1 / top-5 error (ILSVRC-2010 test)",
        source="Table 1",
        paper="40.7% / 18.2% on ILSVRC-2012 val (Table 2)",
        paper_data="imagenet",
        measure=ERROR_VALUE,
        runs={"experiment": "imagenet", "ablation": ABSENT},
        options={"metric": "test/err_top1"},
        unit="%",
        paper_effect=40.7,
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
        proxy=f"the three seeds of the ablations' baseline ({SMALL}), averaged by src/eval.py; "
        "the interval is over the single nets",
    ),
)
