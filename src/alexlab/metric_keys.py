"""The names of what a run measures, STAGE/NAME: the one vocabulary of the keys the module and
the callbacks log, metrics.csv and results.json hold, and the claims, reports, sweeps, configs and
the sweep runner read. A name misspelt here, or one that a run lacks, fails where it is read
(`report.runs.Run.result`), never reads as a run that was not made."""

TRAIN, VAL, TEST = "train", "val", "test"
# The training images scored as the test set is (the final net in eval mode, un-augmented), in
# the test stage, where data.train_eval_images asks for it: the training error an overfitting
# claim sets against held-out error (train/ is the running error with dropout and augmentation).
TRAIN_EVAL = "train_eval"
STAGES = (TRAIN, VAL, TEST, TRAIN_EVAL)
ERR_TOP1, ERR_TOP5, LOSS = "err_top1", "err_top5", "loss"


def key(stage: str, name: str) -> str:
    return f"{stage}/{name}"


TRAIN_ERR_TOP1, TRAIN_ERR_TOP5 = key(TRAIN, ERR_TOP1), key(TRAIN, ERR_TOP5)
VAL_ERR_TOP1, VAL_ERR_TOP5, VAL_LOSS = key(VAL, ERR_TOP1), key(VAL, ERR_TOP5), key(VAL, LOSS)
TEST_ERR_TOP1, TEST_ERR_TOP5, TEST_LOSS = key(TEST, ERR_TOP1), key(TEST, ERR_TOP5), key(TEST, LOSS)
TRAIN_EVAL_ERR_TOP1, TRAIN_EVAL_ERR_TOP5 = key(TRAIN_EVAL, ERR_TOP1), key(TRAIN_EVAL, ERR_TOP5)
TRAIN_EVAL_LOSS = key(TRAIN_EVAL, LOSS)
TRAIN_LOSS = key(TRAIN, LOSS)  # each step's
TRAIN_LOSS_EPOCH = key(TRAIN, "loss_epoch")  # the epoch's mean
TRAIN_LR = key(TRAIN, "lr")  # the weights' learning rate
# The L2 norm of all the net's weights (not its biases) at an epoch's end: whether weight decay
# acts on a run (the weight decay claim's mechanism check).
TRAIN_WEIGHT_NORM = key(TRAIN, "weight_norm")
# Figure 1's measure (callbacks.TargetError): the training error over the images seen since the
# last check, at that many epochs; and the epochs and seconds the run took to reach its target.
TRAIN_EPOCHS, TRAIN_ERR_RECENT = key(TRAIN, "epochs"), key(TRAIN, "err_recent")
EPOCHS_TO_TARGET = key(TRAIN, "epochs_to_target")
SECONDS_TO_TARGET = key(TRAIN, "seconds_to_target")
LRN_SHARE = "lrn/share/"  # + a layer's name (callbacks.LRNShare)

# What the LightningModule logs once an epoch: what a checkpoint or a schedule can monitor.
EPOCH_METRICS = (
    VAL_ERR_TOP1,
    VAL_ERR_TOP5,
    VAL_LOSS,
    TRAIN_ERR_TOP1,
    TRAIN_ERR_TOP5,
    TRAIN_LOSS_EPOCH,
    TRAIN_WEIGHT_NORM,
)
# Every key above that a run logs under its own name (LRN_SHARE's carry a layer's).
LOGGED = frozenset(
    {
        TRAIN_ERR_TOP1,
        TRAIN_ERR_TOP5,
        TRAIN_LOSS,
        TRAIN_LOSS_EPOCH,
        TRAIN_LR,
        TRAIN_WEIGHT_NORM,
        TRAIN_EPOCHS,
        TRAIN_ERR_RECENT,
        EPOCHS_TO_TARGET,
        SECONDS_TO_TARGET,
        VAL_ERR_TOP1,
        VAL_ERR_TOP5,
        VAL_LOSS,
        TEST_ERR_TOP1,
        TEST_ERR_TOP5,
        TEST_LOSS,
        TRAIN_EVAL_ERR_TOP1,
        TRAIN_EVAL_ERR_TOP5,
        TRAIN_EVAL_LOSS,
    }
)
