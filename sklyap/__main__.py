"""Command line: ``python -m sklyap demo``."""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .lyapunov import DEFAULT_WARMUP
from .transformer import LyapunovSpectrumTransformer


def _demo_models(hidden_size, input_size, gains, seed):
    """Freshly initialised networks, with the recurrent weights scaled by each gain."""
    torch.manual_seed(seed)
    models, labels = [], []
    for gain in gains:
        for name, cls in (("RNN", nn.RNN), ("GRU", nn.GRU), ("LSTM", nn.LSTM)):
            model = cls(input_size, hidden_size)
            with torch.no_grad():
                model.weight_hh_l0.mul_(gain)
            models.append(model)
            labels.append(f"{name} x{gain:g}")
    return models, labels


def _task(task, args):
    """``task`` with the population's epochs and training set as the command line asks."""
    overrides = {"n_epochs": args.epochs, "max_train": args.max_train}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        task = dataclasses.replace(task, population={**task.population, **overrides})
    return task


def study(args):
    """The AeLLE study on one or all tasks; see :func:`sklyap.study.run_study`."""
    from .study import TASKS, StudyResult, run_study

    names = list(TASKS) if args.task == "all" else [args.task]
    seeds = list(dict.fromkeys(args.seed))
    if len(seeds) != len(args.seed):
        args.command_parser.error(
            f"--seed {' '.join(map(str, args.seed))}: each population needs its own seed"
        )
    for name in names:
        task = _task(TASKS[name], args)
        n_models = args.n_models or task.n_models
        populations = "a population of" if len(seeds) == 1 else f"{len(seeds)} populations of"
        print(
            f"AeLLE study on {task.title}: {populations} {n_models} trained networks; predicting "
            f"each network's final test accuracy from its Lyapunov spectrum (after epoch "
            f"{task.early_epoch} and after the last), against other predictors, with "
            f"{args.n_repeats} x {args.n_splits}-fold cross-validation.",
            flush=True,
        )
        out = Path(args.output) if len(names) == 1 else Path(args.output) / name
        results = []
        for seed in seeds:
            result = run_study(
                task,
                n_models=args.n_models,
                n_repeats=args.n_repeats,
                n_splits=args.n_splits,
                device=args.device,
                random_state=seed,
                n_jobs=args.n_jobs,
                cache_dir=False if args.no_cache else args.cache_dir,
                verbose=int(not args.quiet),
            )
            folder = out if len(seeds) == 1 else out / f"random_state_{seed}"
            _write_study(result, folder)
            results.append(result)
        if len(seeds) > 1:
            pooled = StudyResult.pool(results)
            print(f"\nPooled over the {len(seeds)} populations:\n")
            print(pooled.table())
            out.mkdir(parents=True, exist_ok=True)
            # A single population's figures beside the pooled results would
            # read as the pool's: they are from an earlier run into this folder.
            stale = [out / f for f in StudyResult.FIGURES if (out / f).exists()]
            for path in stale:
                path.unlink()
            if stale:
                print(
                    f"Removed {len(stale)} figures of an earlier single-population run from {out}"
                )
            (out / "results.json").write_text(pooled.to_json())
            (out / "results.md").write_text(pooled.markdown() + "\n")
            print(f"\nWrote {out / 'results.json'}, {out / 'results.md'}", end="\n\n")
    return 0


def sweep(args):
    """Replayed Optuna studies on each task and population; see :func:`sklyap.study.run_sweep`."""
    from .study import TASKS, run_sweep, transfer_study
    from .study._sweep import plot_anytime, pooled_markdown

    try:
        import optuna  # noqa: F401
    except ImportError:
        print("sklyap sweep runs Optuna studies: pip install 'sklyap[optuna]'", file=sys.stderr)
        return 2
    names = list(dict.fromkeys(args.task))
    seeds = list(dict.fromkeys(args.seed))
    # A task's pruners start from a prior fitted on the other tasks, never on it.
    transfer = None
    if len(names) > 1:
        transfer = transfer_study(
            [_task(TASKS[name], args) for name in names],
            seeds,
            n_models=args.n_models,
            device=args.device,
            n_jobs=args.n_jobs,
            cache_dir=False if args.no_cache else args.cache_dir,
        )
        print(transfer.table(), end="\n\n")
    else:
        print(
            "One task: LyapunovPruner runs with no startup prior (its default prior was "
            "fitted on the study's tasks, this one included).",
            flush=True,
        )
    results = []
    for name in names:
        task = _task(TASKS[name], args)
        for seed in seeds:
            print(
                f"Sweeps of {task.title}, population random_state {seed}: {args.n_orders} "
                f"orders, {' and '.join(map(str, args.workers))} workers.",
                flush=True,
            )
            result = run_sweep(
                task,
                n_orders=args.n_orders,
                workers=args.workers,
                n_pilot=args.n_pilot,
                keep=args.keep,
                factor=args.factor,
                n_models=args.n_models,
                spectrum_cost=args.spectrum_cost,
                prior=None if transfer is None else transfer.priors[task.name],
                device=args.device,
                random_state=seed,
                n_jobs=args.n_jobs,
                cache_dir=False if args.no_cache else args.cache_dir,
                verbose=int(not args.quiet),
            )
            print()
            print(result.table(), end="\n\n")
            results.append(result)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    payload = "[" + ",\n".join(r.to_json() for r in results) + "]\n"
    (out / "results.json").write_text(payload)
    pooled = [
        f"Pooled over the populations, {w} worker{'s' if w > 1 else ''}:\n\n"
        + pooled_markdown(results, workers=w)
        for w in args.workers
    ]
    text = "\n\n".join([*pooled, *(r.markdown() for r in results)])
    written = [out / "results.json", out / "results.md"]
    if transfer is not None:
        text += "\n\n" + transfer.markdown()
        (out / "transfer.json").write_text(transfer.to_json() + "\n")
        written.append(out / "transfer.json")
    (out / "results.md").write_text(text + "\n")
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no figure; pip install 'sklyap[plot]')")
    else:
        n_tasks = len(names)
        fig, axes = plt.subplots(
            len(args.workers),
            n_tasks,
            figsize=(4.6 * n_tasks, 3.6 * len(args.workers)),
            layout="constrained",
            squeeze=False,
        )
        for row, workers in zip(axes, args.workers):
            plot_anytime(results, workers=workers, axes=row)
        fig.savefig(out / "anytime.png", dpi=110)
        plt.close(fig)
        written.append(out / "anytime.png")
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0


def _write_study(result, out):
    """Print one population's table; write its results.json and figures to ``out``."""
    print()
    print(result.table())
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(result.to_json())
    (out / "results.md").write_text(result.markdown() + "\n")
    try:
        paths = result.save_figures(out)
    except ImportError:
        paths = []
        print("\n(matplotlib is not installed: no figures; pip install 'sklyap[plot]')")
    t = result.timings
    print(
        f"\nPopulation and spectra {t['population_and_spectra_s']:.0f} s, cross-validation "
        f"{t['cross_validation_s']:.0f} s. Wrote {out / 'results.json'}, {out / 'results.md'}"
        + "".join(f", {p}" for p in paths),
        end="\n\n",
    )


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


_positive_int = _int_at_least(1)


def _spectrum_cost(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a number of epochs >= 0, got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of epochs >= 0, got {text}")
    return value


def _n_jobs(text):
    """joblib's n_jobs: a positive count, or -1 (all cores), -2 (all but one), ..."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-zero integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "expected a non-zero integer (1: one worker, -1: all cores), got 0"
        )
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text}")
    return value


def _random_spectra(args):
    """Spectra of freshly initialised RNN/GRU/LSTM networks at several weight scales."""
    from .checkpoints import count_weights, memory_limit
    from .dynamics import as_dynamics

    limit = memory_limit(args.max_memory)
    H, d = args.hidden_size, args.input_size
    # Weights of an RNN, a GRU and an LSTM per gain, in float32 and as the
    # engine's float64 copy: checked before any is built.
    weights = sum(count_weights(kind, d, H) for kind in ("RNN", "GRU", "LSTM"))
    need = len(args.gains) * weights * (4 + 8)
    if limit is not None and need > limit:
        raise ValueError(
            f"--hidden-size {H} --input-size {d}: the {3 * len(args.gains)} networks' weights "
            f"need {need / 2**30:.3g} GiB, more than the limit of {limit / 2**30:.3g} GiB "
            "(--max-memory)"
        )
    models, labels = _demo_models(H, d, args.gains, args.seed)
    engine_limit = _engine_limit(args, limit)
    for model in models:
        refusal = _engine_refusal(as_dynamics(model), None, args.n_trajectories, engine_limit)
        if refusal is not None:
            raise ValueError(f"--hidden-size {H}: {refusal}")
    lst = LyapunovSpectrumTransformer(
        n_trajectories=args.n_trajectories,
        n_steps=args.n_steps,
        warmup=args.warmup,
        device=args.device,
        random_state=args.seed,
        verbose=int(not args.quiet),
    )
    start = time.perf_counter()
    lst.fit(models)
    results = lst.compute_spectra(models)
    elapsed = time.perf_counter() - start
    print(
        f"Lyapunov spectra of freshly initialised networks (hidden size {args.hidden_size}, "
        f"recurrent weights scaled by each gain), driven by Gaussian inputs:\n"
        f"{args.n_trajectories} trajectories, {args.warmup} warm-up + {args.n_steps} measured "
        f"steps; exponents in nats per step, +- standard error over trajectories.\n"
    )
    _print_table(labels, results, width=10)
    print(
        f"\n{len(models)} spectra in {elapsed:.1f} s on {results[0].device}. Larger gains push "
        "the largest exponent up, towards and past 0 (the edge of chaos)."
    )
    return 0


def _print_table(labels, results, width, errors=None):
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


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt", ".bin")


def _checkpoint_paths(sources):
    """Files named, and the checkpoint files (by suffix) of folders named, in order."""
    paths = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
            )
            if not found:
                raise ValueError(
                    f"{path}: a folder without checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)})"
                )
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def _describe(dyn):
    return f"{dyn.cell.label} {dyn.num_layers}x{dyn.hidden_size}"


def _write_spectra(path, rows):
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


def _plot_spectra(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ex = np.asarray(r["exponents"])
        if len(ex) and r["error"] is None:
            ax.plot(np.linspace(0, 1, len(ex)), ex, lw=1.2, label=Path(r["checkpoint"]).name)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("normalised exponent index")
    ax.set_ylabel("Lyapunov exponent (nats / step)")
    if len(rows) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _check_writable(option, out, suffixes):
    """An output file the command can write, checked before any work."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix not in suffixes:
        raise ValueError(f"{option} {out}: expected a file ending in {', '.join(suffixes)}")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {out}: not writable")
    if path.is_dir():
        raise ValueError(f"{option} {out}: a folder, expected a file")
    return path


def _read_inputs(args):
    """The --inputs array, checked against --warmup before any checkpoint is read."""
    if args.inputs is None:
        return None
    try:
        inputs = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--inputs {args.inputs}: not a .npy array of inputs ({exc})") from None
    if inputs.ndim not in (2, 3):
        raise ValueError(
            f"--inputs {args.inputs}: an array of shape {inputs.shape}; expected "
            "(T, B, input_size), or (B, T, input_size) with --batch-first, or (T, input_size)"
        )
    steps = inputs.shape[1] if inputs.ndim == 3 and args.batch_first else inputs.shape[0]
    if args.warmup >= steps:
        if inputs.ndim == 2:  # one trajectory, whatever --batch-first says
            layout, other = "(T, input_size)", ""
        elif args.batch_first:
            layout, other = "(B, T, input_size)", ""
        else:
            layout, other = "(T, B, input_size)", "; pass --batch-first if it is (B, T, input_size)"
        raise ValueError(
            f"--warmup {args.warmup} leaves no measured step in the {steps} time steps of "
            f"--inputs {args.inputs} (shape {inputs.shape}, read as {layout}{other})"
        )
    return inputs


def _max_memory(text):
    """``--max-memory``: GiB, or "auto" (half the memory available now)."""
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected GiB (a number > 0) or auto, got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected GiB (a number > 0) or auto, got {text}")
    return int(value * 2**30)


def _failure(exc):
    """The reason a checkpoint failed, in the command's own words."""
    from .checkpoints import UnsafeLoadError

    if isinstance(exc, UnsafeLoadError):
        return exc.advice("--unsafe-load")
    if isinstance(exc, (OSError, TypeError, ValueError, MemoryError)):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"  # what no check foresaw, named as it is


def _engine_refusal(dyn, k, n_trajectories, limit):
    """Why the engine's working memory for ``dyn`` exceeds ``limit``, or None."""
    need = 8 * n_trajectories * dyn.working_numbers(dyn.state_size if k is None else k)
    if limit is None or need <= limit:
        return None
    return (
        f"{_describe(dyn)} (state size {dyn.state_size}, {k or dyn.state_size} exponents, "
        f"{n_trajectories} trajectories) needs {need / 2**30:.3g} GiB of working memory, more "
        f"than the limit of {limit / 2**30:.3g} GiB; pass --n-exponents to compute fewer "
        "exponents, or --max-memory"
    )


def _engine_limit(args, limit):
    """The memory the engine's working set may take: the host's (``limit``), or with
    --max-memory auto on a CUDA device, half the device memory free now."""
    from ._validation import check_device

    device = check_device(args.device)
    if args.max_memory == "auto" and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    return limit


# Models computed together in one call; the output file is rewritten after each.
_CHUNK = 16


def spectra(args):
    """Spectra of trained networks saved as checkpoints (or, with --random, fresh ones).

    Each file is measured on its own: a file that cannot be read or measured,
    for any reason, is a failed row with its reason, and the others are
    measured; the output file is rewritten as results come, so an interrupted
    run keeps what it finished.
    """
    if args.random:
        if args.checkpoints:
            raise ValueError("--random measures fresh networks; give no checkpoints with it")
        return _random_spectra(args)
    if not args.checkpoints:
        raise ValueError(
            "give checkpoint files or folders (state_dicts saved with torch.save, skorch "
            "save_params files, TorchScript files with --unsafe-load), or --random for "
            "fresh networks"
        )
    output = _check_writable("--output", args.output, (".csv", ".json", ".npz"))
    plot = _check_writable("--plot", args.plot, (".png", ".pdf", ".svg"))
    from .checkpoints import load_checkpoint, memory_limit
    from .dynamics import SUPPORTED_MODULES, as_dynamics, recurrent_module
    from .lyapunov import lyapunov_spectrum

    inputs = _read_inputs(args)
    paths = _checkpoint_paths(args.checkpoints)
    limit = memory_limit(args.max_memory)
    if inputs is None:
        n_trajectories = args.n_trajectories
    elif inputs.ndim == 2:  # one trajectory
        n_trajectories = 1
    else:
        n_trajectories = inputs.shape[0] if args.batch_first else inputs.shape[1]
    engine_limit = _engine_limit(args, limit)
    rows = [
        {
            "checkpoint": str(path),
            "model": "",
            "state_size": None,
            "error": None,
            "exponents": [],
            "stderr": [],
        }
        for path in paths
    ]

    def fail(index, exc_or_reason):
        reason = exc_or_reason if isinstance(exc_or_reason, str) else _failure(exc_or_reason)
        # The row names its file; the message need not say it again.
        rows[index]["error"] = reason.removeprefix(f"{paths[index]}: ")
        print(f"sklyap spectra: {paths[index]}: {rows[index]['error']}", file=sys.stderr)

    # dynamics[index]: the system of each checkpoint that loaded; frames[index]: its k.
    dynamics, frames, results = {}, {}, [None] * len(paths)

    def load(index, path):
        model = load_checkpoint(
            path,
            rnn=args.rnn,
            nonlinearity=args.nonlinearity,
            batch_first=args.batch_first,
            weights_only=not args.unsafe_load,
            max_bytes=limit,
        )
        if not isinstance(model, SUPPORTED_MODULES):  # a whole pickled model
            model = recurrent_module(model, rnn=args.rnn)[1]
        # Read once, here; NaN weights are measured as a NaN row.
        dyn = as_dynamics(model, check_finite=False)
        rows[index]["model"] = _describe(dyn)
        k = None if args.n_exponents is None else min(args.n_exponents, dyn.state_size)
        refusal = _engine_refusal(dyn, k, n_trajectories, engine_limit)
        if refusal is not None:
            fail(index, refusal)
        else:
            dynamics[index], frames[index] = dyn, k

    def measure(indices, group_inputs, batch_first, k):
        measured = lyapunov_spectrum(
            [dynamics[i] for i in indices],
            group_inputs,
            n_exponents=k,
            warmup=args.warmup,
            batch_first=batch_first,
            device=args.device,
            on_error="nan",
            verbose=int(not args.quiet),
        )
        for i, result in zip(indices, measured):
            results[i] = result
            rows[i].update(
                state_size=result.state_size,
                error=result.error,
                exponents=result.exponents.tolist(),
                stderr=result.stderr.tolist(),
            )

    start = time.perf_counter()
    try:
        for index, path in enumerate(paths):
            try:
                load(index, path)
            except Exception as exc:  # one bad file never costs the others
                fail(index, exc)
        if output is not None:
            _write_spectra(output, rows)  # the failed rows, and the file's place, at once
        groups = {}
        for index, dyn in dynamics.items():
            groups.setdefault((dyn.input_size, frames[index]), []).append(index)
        for (input_size, k), indices in groups.items():
            # Inputs from a file are laid out as the command says: (T, B, d) unless --batch-first.
            group_inputs, batch_first = inputs, args.batch_first
            if inputs is None:
                gen = torch.Generator().manual_seed(args.seed)
                shape = (args.n_trajectories, args.warmup + args.n_steps, input_size)
                group_inputs = torch.randn(shape, generator=gen, dtype=torch.float64)
                batch_first = True
            for chunk in (indices[i : i + _CHUNK] for i in range(0, len(indices), _CHUNK)):
                try:
                    measure(chunk, group_inputs, batch_first, k)
                except Exception:
                    # Find the model that failed: each on its own, the others measured.
                    for i in chunk:
                        try:
                            measure([i], group_inputs, batch_first, k)
                        except Exception as exc:
                            fail(i, exc)
                if output is not None:
                    _write_spectra(output, rows)
    except KeyboardInterrupt:
        done = sum(r is not None for r in results)
        where = ""
        if output is not None:
            _write_spectra(output, rows)
            where = f"; {output} holds the {done} measured so far"
        print(f"\nsklyap spectra: interrupted{where}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    failed = sum(r["error"] is not None for r in rows)
    where = (
        f"inputs from {args.inputs}"
        if inputs is not None
        else (f"Gaussian inputs, {args.n_trajectories} trajectories")
    )
    print(
        f"Lyapunov spectra of {len(paths)} checkpoints, driven by {where}; "
        f"{args.warmup} warm-up steps; exponents in nats per step.\n"
    )
    labels = [f"{Path(r['checkpoint']).name} ({r['model'] or '?'})" for r in rows]
    _print_table(labels, results, max(10, *map(len, labels)), [r["error"] for r in rows])
    print(f"\n{len(paths) - failed} of {len(paths)} measured in {elapsed:.1f} s.")
    if output is not None:
        print(f"Wrote {output}")
    if plot is not None:
        _plot_spectra(plot, rows)
        print(f"Wrote {plot}")
    return 1 if failed else 0


def cache(args):
    """Where the cache is and what it holds; or clear it."""
    from .cache import cache_info, clear_cache

    if args.action == "info":
        print(cache_info(args.cache_dir))
        return 0
    removed = clear_cache(args.cache_dir, stale_only=args.stale)
    what = "stale entries" if args.stale else "entries and folders"
    print(f"Removed {len(removed)} {what} from {cache_info(args.cache_dir).location}")
    return 0


def _add_population_options(d, output):
    """The options of the commands that train (or load) populations: study, demo, sweep."""
    d.add_argument(
        "--epochs", type=_positive_int, default=None, help="training epochs (default: the task's)"
    )
    d.add_argument(
        "--max-train",
        type=_positive_int,
        default=None,
        help="train on fewer sequences, for quick runs",
    )
    d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=-1,
        help="parallel workers (default -1: all cores; -2: all but one)",
    )
    d.add_argument("--output", default=output, help=f"folder for results and figures ({output})")
    d.add_argument("--cache-dir", default=None, help="cache of trained networks and spectra")
    d.add_argument("--no-cache", action="store_true", help="always retrain")
    d.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklyap" if sys.argv[0].endswith("__main__.py") else "sklyap",
        description="Lyapunov spectra of trained recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"sklyap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_study_arguments(d, output, n_repeats):
        d.add_argument(
            "--n-models",
            type=_int_at_least(2),
            default=None,
            help="networks in the population (default: the task's, 200)",
        )
        d.add_argument(
            "--n-repeats",
            type=_positive_int,
            default=n_repeats,
            help=f"repeats of the cross-validation (default {n_repeats})",
        )
        d.add_argument(
            "--n-splits",
            type=_int_at_least(2),
            default=5,
            help="cross-validation folds (default 5)",
        )
        d.add_argument(
            "--seed",
            type=_int_at_least(0),
            nargs="+",
            default=[0],
            help="random seed of the population (default 0); several seeds study as many "
            "independent populations and pool them",
        )
        _add_population_options(d, output)
        d.set_defaults(func=study, command_parser=d)

    d = commands.add_parser(
        "demo",
        help="the main job: the AeLLE study on sequential digits, 3 repeats "
        "(study --task digits --n-repeats 3)",
    )
    add_study_arguments(d, "sklyap_demo", n_repeats=3)
    d.set_defaults(task="digits")
    d = commands.add_parser(
        "study", help="the AeLLE study on one task, or all: predict trained RNNs' accuracy"
    )
    d.add_argument(
        "--task",
        default="digits",
        choices=["digits", "digits_pixel", "char_text", "all"],
        help="the task (default digits)",
    )
    add_study_arguments(d, "sklyap_study", n_repeats=5)

    d = commands.add_parser(
        "sweep",
        help="early selection in a hyperparameter sweep: Optuna's pruners and LyapunovPruner "
        "compared on recorded populations, every epoch counted",
        description="Each population is swept in random orders by real Optuna studies whose "
        "trials replay its recorded learning curves and early spectra: no pruning, "
        "MedianPruner, SuccessiveHalvingPruner, HyperbandPruner and LyapunovPruner (on "
        "spectra, with the early score, around MedianPruner), with one and several workers; "
        "beside them the pilot-based selection (its pilot counted) and HalvingGridSearchCV. "
        "Reports the regret at fixed budgets of epochs, the recall of the true top 10%%, the "
        "epochs spent and the epochs until a near-best network finished, paired against the "
        "best of Optuna's pruners. Needs sklyap[optuna].",
    )
    d.add_argument(
        "--task",
        nargs="+",
        default=["digits", "digits_pixel", "char_text"],
        choices=["digits", "digits_pixel", "char_text"],
        help="tasks (default: all three)",
    )
    d.add_argument(
        "--seed",
        type=_int_at_least(0),
        nargs="+",
        default=[0, 2],
        help="random states of the populations (default 0 2: two independent ones)",
    )
    d.add_argument(
        "--n-orders", type=_int_at_least(2), default=10, help="random orders per population (10)"
    )
    d.add_argument(
        "--workers",
        type=_positive_int,
        nargs="+",
        default=[1, 4],
        help="trials in flight (default 1 4)",
    )
    d.add_argument(
        "--n-pilot",
        type=_int_at_least(4),
        default=50,
        help="pilot of the pilot-based selection (default 50)",
    )
    d.add_argument(
        "--keep",
        type=_fraction,
        default=0.1,
        help="fraction of the candidates the pilot-based selection keeps (default 0.1)",
    )
    d.add_argument(
        "--factor", type=_int_at_least(2), default=3, help="HalvingGridSearchCV's factor (3)"
    )
    d.add_argument(
        "--n-models",
        type=_int_at_least(8),
        default=None,
        help="networks per population (default: the task's, 200)",
    )
    d.add_argument(
        "--spectrum-cost",
        type=_spectrum_cost,
        default="auto",
        help="what a trial pays for its spectrum, in epochs: auto (measured per kind of "
        "network) or a number >= 0",
    )
    _add_population_options(d, "sklyap_sweep")
    d.set_defaults(func=sweep, command_parser=d)

    d = commands.add_parser(
        "spectra",
        help="spectra of trained networks saved as checkpoints (--random: fresh networks)",
        description="Lyapunov spectra of trained RNN/GRU/LSTM networks saved as checkpoints: "
        "state_dicts (torch.save(model.state_dict())), skorch save_params files, checkpoint "
        "dicts holding a state_dict; with --unsafe-load also TorchScript files and whole "
        "pickled models, which run code as they load. One row per checkpoint; a checkpoint "
        "that cannot be read or measured is a failed row, and the others are measured. Exit "
        "status 1 when a checkpoint failed, 130 when interrupted (the output keeps what was "
        "measured).",
    )
    d.add_argument(
        "checkpoints",
        nargs="*",
        metavar="CHECKPOINT",
        help=f"checkpoint files, or folders of them ({', '.join(CHECKPOINT_SUFFIXES)})",
    )
    d.add_argument(
        "--inputs",
        default=None,
        metavar="FILE.npy",
        help="driving inputs (default: Gaussian), laid out as the networks take "
        "them: (T, B, input_size) unless --batch-first",
    )
    d.add_argument(
        "--batch-first",
        action="store_true",
        help="the networks (and --inputs) are batch first, (B, T, input_size)",
    )
    d.add_argument(
        "--rnn",
        default=None,
        metavar="PATH",
        help="the recurrent module's path in the model, when it holds several",
    )
    d.add_argument(
        "--nonlinearity",
        default="tanh",
        choices=["tanh", "relu"],
        help="of nn.RNN networks, which a state_dict does not record (default tanh)",
    )
    d.add_argument(
        "--n-exponents",
        type=_positive_int,
        default=None,
        help="leading exponents per network (default: all)",
    )
    d.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="write the spectra to a .csv, .json or .npz file",
    )
    d.add_argument("--plot", default=None, metavar="FILE.png", help="plot the spectra")
    d.add_argument(
        "--unsafe-load",
        action="store_true",
        help="also load TorchScript archives (torch.jit.save) and whole pickled models "
        "(torch.save(model)); this runs code from the files: only for files you trust",
    )
    d.add_argument(
        "--max-memory",
        type=_max_memory,
        default="auto",
        metavar="GIB",
        help="refuse a network whose weights or working memory need more (default auto: "
        "half the memory available at the start, of the GPU for the working memory with "
        "--device cuda)",
    )
    d.add_argument(
        "--random",
        action="store_true",
        help="measure freshly initialised RNN/GRU/LSTM networks instead",
    )
    d.add_argument(
        "--hidden-size",
        type=_positive_int,
        default=16,
        help="with --random: hidden units (default 16)",
    )
    d.add_argument(
        "--input-size",
        type=_positive_int,
        default=4,
        help="with --random: input features (default 4)",
    )
    d.add_argument(
        "--gains",
        type=float,
        nargs="+",
        default=[1.0, 4.0],
        help="with --random: scales of the recurrent weights (default 1 4)",
    )
    d.add_argument(
        "--n-trajectories",
        type=_positive_int,
        default=8,
        help="Gaussian input trajectories (default 8)",
    )
    d.add_argument(
        "--n-steps",
        type=_positive_int,
        default=300,
        help="measured steps of Gaussian inputs (default 300)",
    )
    d.add_argument(
        "--warmup",
        type=_int_at_least(0),
        default=DEFAULT_WARMUP,
        help=f"warm-up steps (default {DEFAULT_WARMUP})",
    )
    d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=spectra, command_parser=d)

    d = commands.add_parser(
        "cache",
        help="where the cache of trained networks and spectra is, and what it holds; clear it",
        description="The cache of trained populations and their spectra. Entries are keyed "
        "by what they depend on (code, versions, weights, inputs) and checked when read; "
        "none is deleted automatically. 'info' says where the cache is, what it holds and "
        "how much of it was made by other code or versions (stale); 'clear' removes it "
        "(--stale: only the stale entries).",
    )
    d.add_argument("action", choices=["info", "clear"], help="info or clear")
    d.add_argument("--stale", action="store_true", help="with clear: only stale entries")
    d.add_argument(
        "--cache-dir",
        default=None,
        help="the cache folder (default: $SKLYAP_CACHE_DIR or ~/.cache/sklyap)",
    )
    d.set_defaults(func=cache, command_parser=d)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (TypeError, ValueError) as exc:
        # The command's own parser, so that the usage line shown is the command's.
        getattr(args, "command_parser", parser).error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
