import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
# tests never write to the user's cache
_CACHE = Path(os.environ.get("PYTEST_ZOO_CACHE", "/tmp/zoo-test-cache-%d" % os.getuid()))
os.environ["ZOO_CACHE_DIR"] = str(_CACHE)
sys.path.insert(0, str(Path(__file__).parent))  # `from fixtures... import ...`

try:
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    return d
