"""wandb's open-source sweep engine (the `sweeps` package), imported without the warning its
pydantic v1 config names raise under pydantic 2."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")
    import sweeps

__all__ = ["sweeps"]
