"""``sklyap spectra``: spectra of checkpoints, or of freshly initialised networks.

Each checkpoint is one row: a file that cannot be read or measured is a failed
row with its reason, and the others are measured.
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._layout import DEFAULT_WARMUP, check_warmup, gaussian_inputs
from .._validation import SPECTRUM_CONSTRAINTS, Interval, Options
from ..transformer import LyapunovSpectrumTransformer
from ._options import (
    UsageError,
    add_options,
    constrained,
    device,
    int_at_least,
    option,
    positive_int,
)
from ._output import check_writable, plot_spectra, print_table, write_spectra


def register(commands):
    """Add the spectra command to ``commands`` (argparse subparsers)."""
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
    add_options(
        d,
        option("--n-exponents", constrained(*SPECTRUM_CONSTRAINTS["n_exponents"]), None,
               "leading exponents per network", shown="all"),
    )  # fmt: skip
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
    add_options(
        d,
        option("--hidden-size", positive_int, 16, "with --random: hidden units"),
        option("--input-size", positive_int, 4, "with --random: input features"),
        option("--gains", float, [1.0, 4.0], "with --random: scales of the recurrent weights",
               nargs="+", shown="1 4"),
        option("--n-trajectories", positive_int, 8, "Gaussian input trajectories"),
        option("--n-steps", positive_int, 300, "measured steps of Gaussian inputs"),
        option("--warmup", constrained(*SPECTRUM_CONSTRAINTS["warmup"]), DEFAULT_WARMUP,
               "warm-up steps"),
        option("--device", device, "auto", "auto, cpu or cuda"),
        option("--seed", int_at_least(0), 0, "random seed"),
    )  # fmt: skip
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=spectra, command_parser=d)


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


def _random_spectra(args):
    """Spectra of freshly initialised RNN/GRU/LSTM networks at several weight scales."""
    from ..checkpoints import count_weights, memory_limit
    from ..dynamics import as_dynamics

    limit = memory_limit(args.max_memory)
    H, d = args.hidden_size, args.input_size
    # Weights of an RNN, a GRU and an LSTM per gain, in float32 and as the
    # engine's float64 copy: checked before any is built.
    weights = sum(count_weights(kind, d, H) for kind in ("RNN", "GRU", "LSTM"))
    need = len(args.gains) * weights * (4 + 8)
    if limit is not None and need > limit:
        raise UsageError(
            f"--hidden-size {H} --input-size {d}: the {3 * len(args.gains)} networks' weights "
            f"need {need / 2**30:.3g} GiB, more than the limit of {limit / 2**30:.3g} GiB "
            "(--max-memory)"
        )
    models, labels = _demo_models(H, d, args.gains, args.seed)
    engine_limit = _engine_limit(args, limit)
    for model in models:
        refusal = _engine_refusal(as_dynamics(model), None, args.n_trajectories, engine_limit)
        if refusal is not None:
            raise UsageError(f"--hidden-size {H}: {refusal}")
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
    print_table(labels, results, width=10)
    print(
        f"\n{len(models)} spectra in {elapsed:.1f} s on {results[0].device}. Larger gains push "
        "the largest exponent up, towards and past 0 (the edge of chaos)."
    )
    return 0


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
                raise UsageError(
                    f"{path}: a folder without checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)})"
                )
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def _describe(dyn):
    return f"{dyn.cell.label} {dyn.num_layers}x{dyn.hidden_size}"


def _spell(name, value):
    """A setting as this command's options spell it: ``--batch-first``, ``--warmup 5``."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"no {flag}"
    return f"{flag} {value}"


def _read_inputs(args):
    """The --inputs array, checked against --warmup before any checkpoint is read."""
    if args.inputs is None:
        return None
    try:
        inputs = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {args.inputs}: not a .npy array of inputs ({exc})") from None
    if inputs.ndim not in (2, 3):
        raise UsageError(
            f"--inputs {args.inputs}: an array of shape {inputs.shape}; expected "
            "(T, B, input_size), or (B, T, input_size) with --batch-first, or (T, input_size)"
        )
    steps = inputs.shape[1] if inputs.ndim == 3 and args.batch_first else inputs.shape[0]
    try:  # the layout is the option's, given or left out
        check_warmup(args.warmup, steps, inputs.shape, args.batch_first, "argument", spell=_spell)
    except ValueError as exc:
        raise UsageError(f"--inputs {args.inputs}: {exc}") from None
    return inputs


# --max-memory: GiB, or "auto" (half the memory available now).
_max_memory = constrained(
    Options("auto"),
    Interval(float, 0, None, closed="neither"),
    then=lambda gib: int(gib * 2**30),
    hint=" (GiB)",
)


def _failure(exc):
    """The reason a checkpoint failed, in the command's own words."""
    from ..checkpoints import UnsafeLoadError

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
    from .._validation import check_device

    resolved = check_device(args.device)
    if args.max_memory == "auto" and resolved.type == "cuda":
        return torch.cuda.mem_get_info(resolved)[0] // 2
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
            raise UsageError("--random measures fresh networks; give no checkpoints with it")
        if args.inputs is not None:
            raise UsageError(
                "--random drives fresh networks with Gaussian inputs (--n-trajectories, "
                "--n-steps); --inputs drives checkpoints"
            )
        return _random_spectra(args)
    if not args.checkpoints:
        raise UsageError(
            "give checkpoint files or folders (state_dicts saved with torch.save, skorch "
            "save_params files, TorchScript files with --unsafe-load), or --random for "
            "fresh networks"
        )
    output = check_writable("--output", args.output, (".csv", ".json", ".npz"))
    plot = check_writable("--plot", args.plot, (".png", ".pdf", ".svg"))
    from ..checkpoints import load_checkpoint, memory_limit
    from ..dynamics import SUPPORTED_MODULES, as_dynamics, recurrent_module
    from ..lyapunov import lyapunov_spectrum

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
            write_spectra(output, rows)  # the failed rows, and the file's place, at once
        groups = {}
        for index, dyn in dynamics.items():
            groups.setdefault((dyn.input_size, frames[index]), []).append(index)
        for (input_size, k), indices in groups.items():
            # Inputs from a file are laid out as the command says: (T, B, d) unless --batch-first.
            group_inputs, batch_first = inputs, args.batch_first
            if inputs is None:
                group_inputs = gaussian_inputs(
                    args.n_trajectories,
                    args.warmup + args.n_steps,
                    input_size,
                    random_state=args.seed,
                )
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
                    write_spectra(output, rows)
    except KeyboardInterrupt:
        done = sum(r is not None for r in results)
        where = ""
        if output is not None:
            write_spectra(output, rows)
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
    print_table(labels, results, max(10, *map(len, labels)), [r["error"] for r in rows])
    print(f"\n{len(paths) - failed} of {len(paths)} measured in {elapsed:.1f} s.")
    if output is not None:
        print(f"Wrote {output}")
    if plot is not None:
        plot_spectra(plot, rows)
        print(f"Wrote {plot}")
    return 1 if failed else 0
