"""Train and test one configuration: `python src/train.py model.activation=tanh` (Hydra overrides)."""

import sys

import hydra
from omegaconf import DictConfig

from alexlab.config import refuse_null_groups, register_resolvers

register_resolvers()  # before Hydra composes the config: hydra.run.dir uses them


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    register_resolvers()  # again in a launcher's worker (joblib, submitit): it runs main alone
    # Imported here, not above: Hydra's tab completion, --cfg and --help, and a start that its
    # Hydra callback refuses (alexlab/guard.py), end before this and never load torch or Lightning.
    from alexlab.training import train

    # The returned value is what Hydra sweepers (e.g. Optuna) minimize.
    return train(cfg).get("val/err_top1")


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], "train")  # Hydra's own refusal is a traceback
    main()
