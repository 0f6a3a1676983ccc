"""What LyapunovPruner costs a trial, in epochs: one spectrum and the pruner's decision.

The sweep study (``python -m sklyap sweep``) counts training epochs; a trial
pruned by its spectrum also pays for that spectrum, and the study for the
pruner's refits. For networks of each study task (each cell kind, hidden
sizes 16 and 64), this times one training epoch (the study's trainer), one
spectrum after it with the study's driving inputs and settings (each the
best of 3 after a warm-up), and one
decision of ``LyapunovPruner`` at its defaults on a study of 100 finished
trials (a refit of its forest), and prints the spectrum's and the decision's
cost as a fraction of the epoch.

    python benchmarks/bench_pruning_cost.py [--quick] [--out PATH]
"""

import time

import numpy as np
import optuna
from _common import parse_args, write_report

from sklyap import LyapunovSpectrumTransformer
from sklyap.datasets._population import _build, _load_task, _train_network
from sklyap.selection import LyapunovPruner
from sklyap.study import TASKS
from sklyap.study._run import _inputs


def best_of(fn, *args, repeats=3):
    """The best of ``repeats`` timed calls, after one untimed call (loading, warm-up)."""
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def decision_seconds(n_finished=100, n_features=33, repeats=3):
    """Seconds of one decision that refits the forest on ``n_finished`` trials."""
    rng = np.random.default_rng(0)
    best = np.inf
    for _ in range(repeats):
        pruner = LyapunovPruner()
        study = optuna.create_study(direction="maximize", pruner=pruner)
        for _ in range(n_finished):
            trial = study.ask()
            spectrum = rng.normal(size=n_features - 1).tolist()
            record = {"step": 1, "spectrum": spectrum, "architecture": None, "size": None}
            trial.set_user_attr("sklyap_spectrum", record)
            trial.report(float(rng.random()), 1)
            study.tell(trial, float(rng.random()))
        trial = study.ask()
        record = {"step": 1, "spectrum": [0.0] * (n_features - 1), "architecture": None}
        trial.set_user_attr("sklyap_spectrum", {**record, "size": None})
        trial.report(0.5, 1)
        start = time.perf_counter()
        trial.should_prune()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    args = parse_args(__doc__, "digits only, one size", "bench_pruning_cost.json", argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    decision = decision_seconds()
    print(f"one decision with a refit on 100 finished trials: {decision:.3f} s")
    rows = []
    tasks = ["digits"] if args.quick else list(TASKS)
    for name in tasks:
        spec = TASKS[name]
        config = spec.population
        inputs = _inputs(spec, 0)
        data = _load_task(config["task"])
        transformer = LyapunovSpectrumTransformer(
            inputs["val"],
            input_encoder=spec.input_encoder,
            warmup=inputs["warmup"],
            n_features=32,
            n_jobs=1,
        )
        for cell in config.get("cells", ("RNN", "GRU", "LSTM")):
            for size in (16,) if args.quick else (16, 64):
                hp = {
                    "cell": cell,
                    "hidden_size": size,
                    "init_scale": 1.0,
                    "learning_rate": 5e-3,
                    "seed": 0,
                }
                task, max_train = config["task"], config.get("max_train")
                epoch = best_of(_train_network, task, hp, 1, (), 64, max_train)
                model = _build(task, data, hp)
                spectrum = best_of(transformer.fit_transform, [model])
                row = {
                    "task": name,
                    "cell": cell,
                    "hidden_size": size,
                    "epoch_s": epoch,
                    "spectrum_s": spectrum,
                    "spectrum_per_epoch": spectrum / epoch,
                    "decision_per_epoch": decision / epoch,
                }
                rows.append(row)
                print(
                    f"{name:12s} {cell:4s} {size:3d}: epoch {epoch:6.2f} s, spectrum "
                    f"{spectrum:6.2f} s ({spectrum / epoch:5.2f} epochs), decision "
                    f"{decision / epoch:5.3f} epochs"
                )
    write_report("bench_pruning_cost", args.out, rows, decision_s=decision)


if __name__ == "__main__":
    main()
