"""The validation images held out of ImageNet's training set."""

import numpy as np

from alexlab.errors import UserError


def hold_out(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into `labels`: `per_class` images of every class, drawn with `seed`,
    for validation (the learning-rate schedule and the best checkpoint), the rest for training.

    ILSVRC's own val/ is then the test set, scored once, as the paper's Table 2 reports it:
    choosing the schedule or the checkpoint on the images the error is reported on would flatter it.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    by_class = np.argsort(labels, kind="stable")
    classes, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    if counts.min() <= per_class:
        label, count = classes[counts.argmin()], counts.min()
        fix = (
            f"set data.val_per_class below {count}"
            if count > 1
            else "each class needs 2 (one to validate on, one to train on)"
        )
        raise UserError(
            f"data.val_per_class={per_class}: class {label} has only {count} training images; "
            + fix
        )
    val = np.sort(
        np.concatenate(
            [
                rng.choice(by_class[start : start + count], per_class, replace=False)
                for start, count in zip(starts, counts, strict=True)
            ]
        )
    )
    return np.setdiff1d(np.arange(len(labels)), val), val
