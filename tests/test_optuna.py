"""hparams_search=lr_optuna: Optuna (hydra-optuna-sweeper) over the learning rate on real
Fashion-MNIST, its trials pruned by the median rule, checked against the runs' own curves."""

import subprocess

import numpy as np
import pytest
import yaml
from conftest import REPO, SHORT_RUN, offline_env

from alexlab import rundir

TRIALS, EPOCHS, STARTUP = 8, 3, 5  # STARTUP: MedianPruner's finished trials before it prunes


@pytest.mark.slow  # eight short runs
def test_optuna_searches_the_rate_and_prunes_trials_below_the_median(tmp_path):
    sweep_dir = tmp_path / "optuna"
    run = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "src/train.py",
            "-m",
            "hparams_search=lr_optuna",
            *[o for o in SHORT_RUN if not o.startswith("trainer.max_epochs")],
            f"trainer.max_epochs={EPOCHS}",
            "data.subset=512",
            "data.val_size=256",
            "test=false",
            f"hydra.sweeper.n_trials={TRIALS}",
            f"hydra.sweep.dir={sweep_dir}",
            "callbacks.progress_bar=null",
        ],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    runs = [sweep_dir / str(n) for n in range(TRIALS)]
    curves = [
        [row["val/err_top1"] for row in rundir.read_history(r) if "val/err_top1" in row]
        for r in runs
    ]
    rates = [rundir.read_config(r)["optim"]["lr"] for r in runs]
    assert all(0.0005 <= rate <= 0.05 for rate in rates) and len(set(rates)) == TRIALS

    # MedianPruner by hand: after STARTUP finished trials, a trial stops after the first epoch at
    # which its best error so far is above the median of the earlier trials' errors there (every
    # earlier trial is finished: the sweeper runs one at a time and tells a pruned one complete).
    pruned = []
    for n, curve in enumerate(curves):
        stop = EPOCHS
        for epoch in range(EPOCHS):
            earlier = [c[epoch] for c in curves[:n] if len(c) > epoch]
            if n >= STARTUP and min(curve[: epoch + 1]) > np.percentile(earlier, 50):
                stop = epoch + 1
                break
        assert len(curve) == stop, f"trial {n}: {curve} against {curves[:n]}"
        pruned += [n] if stop < EPOCHS else []
    assert pruned, "no trial was pruned: the test shows nothing"
    for n in pruned:
        assert f"optuna: trial {n} pruned after epoch {len(curves[n]) - 1}" in run.stdout

    # Each trial's value is what src/train.py returned: its last validation error.
    study = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = int(np.argmin([curve[-1] for curve in curves]))
    assert study["best_value"] == pytest.approx(curves[best][-1])
    assert study["best_params"]["optim.lr"] == pytest.approx(rates[best])
