"""Programs the suites run in a fresh interpreter (``python -m benchmarks.children.<name>``), so
that each measures its own time and peak memory; each prints one JSON line last."""
from __future__ import annotations

import resource


def peak_mb() -> float:
    """Peak RSS of this process in MB."""
    # VmHWM belongs to the process's own address space, while ru_maxrss survives exec on Linux
    # and would report the (larger) parent's peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
