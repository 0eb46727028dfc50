"""Where the project's own files are, beside src/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Hydra's config groups: their `_target_`s are the only ones a run's config.yaml may name.
CONF_DIR = ROOT / "conf"
# One file per study of the paper (alexlab/studies.py): data, not a config group, since a run
# does not compose it (it carries its study's name and arm, conf/train.yaml's `study`).
STUDIES_DIR = ROOT / "studies"
