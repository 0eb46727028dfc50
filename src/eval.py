"""Score checkpoints and their ensemble: `python src/eval.py ckpt_paths=[RUN_DIR,...]` (Hydra overrides)."""

import sys

import hydra
from omegaconf import DictConfig

from alexlab.config import refuse_null_groups, register_resolvers

register_resolvers()  # before Hydra composes the config: hydra.run.dir uses them


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    register_resolvers()  # again in a launcher's worker (joblib, submitit): it runs main alone
    from alexlab.evaluation import evaluate  # here: tab completion and --cfg never load torch

    evaluate(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], "eval")  # Hydra's own refusal is a traceback
    main()
