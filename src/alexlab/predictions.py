"""Errors and ensembles from saved class probabilities: numpy over arrays, no net is run.

src/eval.py saves each net's probabilities (softmax, averaged over the test patches first); the
ensemble of any subset of the nets is their mean, so the reports compute it later from the files.
"""

import numpy as np

from alexlab.tables import markdown_table, percent


def ensemble(probs: list[np.ndarray]) -> np.ndarray:
    """The paper's ensemble: the nets' probabilities (each already averaged over patches), averaged."""
    return np.mean([p.astype(np.float32) for p in probs], axis=0)


def misses(probs: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Per image, whether its label is not among the k most probable classes."""
    ranked = np.argsort(-probs.astype(np.float32), axis=1, kind="stable")
    return ~(ranked[:, :k] == labels[:, None]).any(axis=1)


def errors(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and top-5 error (top-k: the label is not among the k most probable classes)."""
    ks = (1, min(5, probs.shape[1]))
    return {f"err_top{k}": float(np.mean(misses(probs, labels, k))) for k in ks}


def results_table(results: dict[str, dict[str, float]]) -> str:
    """Each net's errors (and the ensemble's), a row per net."""
    keys = list(next(iter(results.values())))
    rows = [[name, *(percent(scores[key]) for key in keys)] for name, scores in results.items()]
    return markdown_table(["net", *(key.replace("err_", "") + " error" for key in keys)], rows)
