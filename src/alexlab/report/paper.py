"""The paper's numbers that the reports print beside ours (shared/PAPER.md has the sources)."""

# Figure 1, CIFAR-10, four-layer net: epochs to 25% training error, read from the plot.
FIGURE1_TARGET = 0.25
FIGURE1_EPOCHS = {"relu": 6, "tanh": 36}

# In-text ablations on ILSVRC: how much the top-1 / top-5 error rises when the paper's choice is
# undone (the paper states each as the reduction its choice brings).
ABLATIONS = {
    "no_lrn": "+1.4 / +1.2",
    "plain_pooling": "+0.4 / +0.3",
    "no_pca_lighting": "> +1 (top-1)",
    "one_column": "+1.7 / +1.2",
    "no_conv3": "about +2 (top-1)",
    "no_conv4": "about +2 (top-1)",
    "no_dropout": "overfits badly; dropout about doubles the iterations to converge",
    "no_crops_flips": "overfits substantially (no number)",
    "no_weight_decay": "a higher training error (no number)",
    "zero_biases": "slower early learning (no number)",
}

# CIFAR-10, four-layer net: test error without and with LRN.
LRN_CIFAR = {"off": "13%", "code": "11%", "printed": "11%"}

# One CNN, top-1 / top-5 error: Table 1 (ILSVRC-2010 test) and Table 2 (ILSVRC-2012 val).
TABLE1 = {"imagenet": "37.5% / 17.0% (2010 test); 40.7% / 18.2% (2012 val)"}

# Averaging the predictions of several CNNs, top-1 / top-5 error on ILSVRC-2012 val (Table 2;
# * marks nets pre-trained on all of ImageNet Fall 2011); one CNN is TABLE1.
ENSEMBLES = {"5 CNNs": "38.1% / 16.4%", "7 CNNs*": "36.7% / 15.4%"}
