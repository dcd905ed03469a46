"""The suites of ``python -m benchmarks.run``, one module each: ``DESCRIPTION`` (what it measures,
for ``--help``) and ``run(args, work) -> Suite`` (``work``: an empty folder of its own)."""
from __future__ import annotations

from benchmarks.suites import bucketing, cache, data, folder, index, infer, longfile, rates, step, stream, train

# name -> suite module, in the order a run without --suite takes them
SUITES = {
    "data": data,
    "rates": rates,
    "index": index,
    "bucketing": bucketing,
    "train": train,
    "step": step,
    "cache": cache,
    "infer": infer,
    "folder": folder,
    "stream": stream,
    "longfile": longfile,
}
