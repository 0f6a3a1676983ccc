"""What ``sklyap spectra`` writes: the printed table, the spectra file
(.csv, .json, .npz) and the plot, and the check that their paths can be written."""

import os
from pathlib import Path

import numpy as np

from ._options import UsageError


def print_table(labels, results, width, errors=None):
    header = (
        f"{'network':{width}} {'state':>5} {'lambda_1':>17} {'lambda_2':>9} "
        f"{'lambda_n':>9} {'sum':>9} {'n > 0':>6}"
    )
    print(header)
    print("-" * len(header))
    errors = errors or [None] * len(results)
    for label, r, error in zip(labels, results, errors):
        if r is None or r.error is not None:
            reason = r.error if r is not None else error or "could not be read"
            print(f"{label:{width}} {'':>5} failed: {reason}")
            continue
        ex = r.exponents
        second = f"{ex[1]:>9.4f}" if len(ex) > 1 else f"{'-':>9}"
        print(
            f"{label:{width}} {r.state_size:>5} {ex[0]:>9.4f} +-{r.stderr[0]:6.4f} {second} "
            f"{ex[-1]:>9.4f} {ex.sum():>9.3f} {int(np.sum(ex > 0)):>6}"
        )


def write_spectra(path, rows):
    """rows: dicts with checkpoint, model, state_size, error, exponents, stderr.

    Written whole to a temporary file beside ``path`` and moved over it, so
    that the file always holds a complete table (of the rows done so far).
    """
    width = max((len(r["exponents"]) for r in rows), default=0)
    padded = np.full((len(rows), width), np.nan)
    padded_err = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        padded[i, : len(r["exponents"])] = r["exponents"]
        padded_err[i, : len(r["stderr"])] = r["stderr"]
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix == ".csv":
        import csv

        with partial.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["checkpoint", "model", "state_size", "error"]
                + [f"lambda_{j + 1}" for j in range(width)]
            )
            for r, ex in zip(rows, padded):
                writer.writerow(
                    [r["checkpoint"], r["model"], r["state_size"], r["error"] or ""]
                    + ["" if np.isnan(v) else repr(float(v)) for v in ex]
                )
    elif path.suffix == ".json":
        import json

        partial.write_text(
            json.dumps(
                [
                    {
                        **r,
                        "exponents": [None if np.isnan(v) else float(v) for v in r["exponents"]],
                        "stderr": [None if np.isnan(v) else float(v) for v in r["stderr"]],
                    }
                    for r in rows
                ],
                indent=1,
            )
        )
    else:  # .npz
        with partial.open("wb") as f:
            np.savez(
                f,
                checkpoint=np.array([r["checkpoint"] for r in rows]),
                model=np.array([r["model"] for r in rows]),
                state_size=np.array([r["state_size"] or 0 for r in rows]),
                error=np.array([r["error"] or "" for r in rows]),
                exponents=padded,
                stderr=padded_err,
            )
    os.replace(partial, path)


def plot_spectra(path, rows):
    # A figure of its own, not pyplot's: the caller's backend and open figures
    # stay as they were when the command runs inside a Python session.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for r in rows:
        ex = np.asarray(r["exponents"])
        if len(ex) and r["error"] is None:
            ax.plot(np.linspace(0, 1, len(ex)), ex, lw=1.2, label=Path(r["checkpoint"]).name)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("normalised exponent index")
    ax.set_ylabel("Lyapunov exponent (nats / step)")
    if len(rows) <= 12:
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)


def check_writable(option, out, suffixes):
    """An output file the command can write, checked before any work."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix not in suffixes:
        raise UsageError(f"{option} {out}: expected a file ending in {', '.join(suffixes)}")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {out}: not writable")
    if path.is_dir():
        raise UsageError(f"{option} {out}: a folder, expected a file")
    return path
