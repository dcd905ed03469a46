import logging
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

    # under pytest-xdist (make test) each worker gets one thread: two workers x two threads on
    # two cores would oversubscribe them
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    return d


class Result:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def run(capsys, monkeypatch):
    """Run `python -m zoo ...` in this process (Lightning is imported once for all tests)."""
    from zoo.cli import main

    def _run(*args, cwd=Path(__file__).resolve().parents[1]):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        # Lightning binds its log handlers to the sys.stderr of its first import (an earlier
        # test's capture); point them at this test's
        loggers = [logging.getLogger()] + [l for l in logging.Logger.manager.loggerDict.values()
                                           if isinstance(l, logging.Logger)]
        for lg in loggers:
            for h in lg.handlers:
                if type(h) is logging.StreamHandler and getattr(h.stream, "closed", False):
                    h.stream = sys.stderr
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return _run
