"""Helpers shared by the benchmark scripts: timing, machine description, JSON report."""

import json
import math
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def cpu_name():
    """The processor's model name, as /proc/cpuinfo gives it where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def best_of(fn, repeats):
    """The shortest wall time of ``repeats`` calls of ``fn``, in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_report(name, out, rows, **extra):
    """Write rows and a description of the machine as JSON to ``out``; return the path."""
    report = dict(
        benchmark=name,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.machine(),
        processor=cpu_name(),
        cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        python=platform.python_version(),
        time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
        rows=rows,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return out
