"""
Pruning an Optuna sweep of skorch RNNs by their early spectra
=============================================================

A real Optuna study searches GRU and LSTM classifiers of sequential digits
(cell, hidden size, initialisation scale, learning rate), each trial a
skorch net trained for up to ``--epochs`` epochs. After epoch 1 the
:class:`sklyap.callbacks.LyapunovPruning` callback stores the net's Lyapunov
spectrum with the trial, and :class:`sklyap.selection.LyapunovPruner`,
fitted on the trials that have finished so far, stops the trials whose
spectrum and epoch-1 accuracy predict a final accuracy confidently below
the finished trials' top quarter. Until ``--n-startup`` trials have
finished, its startup prior (learnt on other tasks) judges the trials by
their ranks among those seen so far. No pilot is trained.

The figure shows every trial's learning curve (pruned ones stop at epoch 1)
and, for the trials its regressor judged and let finish, the final accuracy it
predicted against the one reached.

    python examples/plot_optuna_pruning.py [--n-trials 40] [--out optuna_pruning.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import optuna
import torch
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn

from sklyap import LyapunovSpectrumTransformer
from sklyap.callbacks import LyapunovPruning
from sklyap.datasets import RecurrentClassifier, digit_streams, load_sequential_digits
from sklyap.selection import LyapunovPruner


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Pruning an Optuna sweep of skorch RNNs by their early spectra"
    )
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument(
        "--n-startup", type=int, default=10, help="finished trials before the regressor decides"
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--n-images", type=int, default=20, help="digits per driving stream")
    parser.add_argument("--out", default="optuna_pruning.png")
    args = parser.parse_args(argv)

    data = load_sequential_digits("row")
    X, y = data.X_train[: args.max_train], data.y_train[: args.max_train]
    validation = predefined_split(Dataset(data.X_val, data.y_val))
    streams = digit_streams(data.X_val, n_trajectories=8, n_images=args.n_images, random_state=0)
    transformer = LyapunovSpectrumTransformer(streams, warmup=4 * data.n_steps, n_features=32)

    def objective(trial):
        torch.manual_seed(trial.number)
        net = NeuralNetClassifier(
            RecurrentClassifier,
            module__input_size=data.input_size,
            module__n_classes=data.n_classes,
            module__cell=trial.suggest_categorical("cell", ["GRU", "LSTM"]),
            module__hidden_size=trial.suggest_categorical("hidden_size", [16, 32, 64]),
            module__init_scale=trial.suggest_float("init_scale", 0.5, 20.0, log=True),
            lr=trial.suggest_float("lr", 1e-3, 3e-2, log=True),
            max_epochs=args.epochs,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            train_split=validation,
            callbacks=[LyapunovPruning(trial, transformer, epoch=1)],
            verbose=0,
        )
        net.fit(X, y)
        return float(net.history[-1, "valid_acc"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = LyapunovPruner(n_startup_trials=args.n_startup)
    study = optuna.create_study(
        direction="maximize", pruner=pruner, sampler=optuna.samplers.TPESampler(seed=0)
    )
    study.optimize(objective, n_trials=args.n_trials)

    states = optuna.trial.TrialState
    trials = study.get_trials(states=(states.COMPLETE, states.PRUNED))
    spent = sum(len(t.intermediate_values) for t in trials)
    pruned = [t for t in trials if t.state == states.PRUNED]
    print(
        f"{len(trials)} trials, {len(pruned)} pruned after epoch 1; {spent} epochs trained of "
        f"{len(trials) * args.epochs} for all to the end; best validation accuracy "
        f"{study.best_value:.3f} ({study.best_params})"
    )

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for t in trials:
        steps = sorted(t.intermediate_values)
        finished = t.state == states.COMPLETE
        left.plot(
            steps,
            [t.intermediate_values[s] for s in steps],
            "-" if finished else "o",
            color="C0" if finished else "C3",
            alpha=0.6,
            lw=1,
            ms=4,
        )
    left.plot([], [], "-", color="C0", label="finished")
    left.plot([], [], "o", color="C3", label="pruned after epoch 1")
    left.set_xlabel("epoch")
    left.set_ylabel("validation accuracy")
    left.set_title(f"{spent} of {len(trials) * args.epochs} epochs trained", fontsize=10)
    left.legend(fontsize=8)

    values = {t.number: t.value for t in trials if t.state == states.COMPLETE}
    judged = [d for d in pruner.decisions_ if d["by"] == "regressor" and d["trial"] in values]
    if judged:
        right.errorbar(
            [d["predicted"] for d in judged],
            [values[d["trial"]] for d in judged],
            xerr=[d["spread"] for d in judged],
            fmt="o",
            alpha=0.8,
        )
        line = np.array([min(values.values()), max(values.values())])
        right.plot(line, line, color="0.6", lw=0.8)
    right.set_xlabel("final accuracy predicted after epoch 1 (± spread)")
    right.set_ylabel("final validation accuracy")
    right.set_title(f"{len(judged)} trials judged and let finish", fontsize=10)
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
