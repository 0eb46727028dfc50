"""Score checkpoints and their ensemble: `python src/eval.py ckpt_paths=[RUN_DIR,...]` (Hydra overrides)."""

import hydra
from omegaconf import DictConfig

from alexlab.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
