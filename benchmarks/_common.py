"""Helpers shared by the benchmark scripts: timing, machine description, JSON report."""

import argparse
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


def parse_args(doc, quick_help, out_name, argv=None, extra=()):
    """The benchmarks' command line: --quick, --threads (applied here), --out and the
    ``(flag, help)`` switches in ``extra``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    for flag, help in extra:
        parser.add_argument(flag, action="store_true", help=help)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", default=str(RESULTS / out_name))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
