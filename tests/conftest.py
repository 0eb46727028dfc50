import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def foolbox_data() -> Path:
    """Real CIFAR-10 and ImageNet samples shipped inside the foolbox package (not imported)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        pytest.fail(
            "foolbox is not installed: run `make install` (it ships the real image samples)"
        )
    return Path(spec.submodule_search_locations[0]) / "data"


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.fail("Fashion-MNIST is missing: run `make install` (Debian dataset-fashion-mnist)")
    return FASHION_MNIST
