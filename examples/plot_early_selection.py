"""
Early selection: predict final accuracy after one epoch, inside a hyperparameter search
=======================================================================================

A pilot population of RNN/GRU/LSTM networks is trained to the end on
sequential digits (cached on disk after the first run). A
:class:`sklyap.selection.FinalAccuracyPredictor` learns, from the pilot,
each network's final test accuracy from its Lyapunov spectrum after epoch 1
and its validation accuracy then. Two uses follow:

* on a fresh population (other seeds, same search space), the predictions
  made after epoch 1 against the accuracy reached at the end, beside the
  epoch-1 accuracy alone (the figure);
* as ``scoring=`` of scikit-learn's ``GridSearchCV`` over skorch nets: every
  candidate trains one epoch and is scored by the final accuracy its
  dynamics promise; the best three are trained to the end.

    python examples/plot_early_selection.py [--n-pilot 60] [--out early_selection.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from skorch import NeuralNetClassifier
from torch import nn

from sklyap import LyapunovSpectrumTransformer
from sklyap.datasets import (
    RecurrentClassifier,
    digit_streams,
    load_sequential_digits,
    train_rnn_population,
)
from sklyap.selection import FinalAccuracyPredictor


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Early selection: predict final accuracy after one epoch, inside a hyperparameter search"
    )
    parser.add_argument("--n-pilot", type=int, default=60, help="pilot networks")
    parser.add_argument("--n-fresh", type=int, default=40, help="networks of the fresh population")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--n-images", type=int, default=20, help="digits per driving stream")
    parser.add_argument("--out", default="early_selection.png")
    args = parser.parse_args(argv)

    # 1. The pilot, trained to the end, its weights kept after epoch 1.
    settings = {"n_epochs": args.epochs, "max_train": args.max_train, "verbose": 0}
    pilot = train_rnn_population("digits", args.n_pilot, random_state=0, **settings)
    data = load_sequential_digits("row")
    streams = digit_streams(data.X_val, n_trajectories=8, n_images=args.n_images, random_state=0)
    transformer = LyapunovSpectrumTransformer(streams, warmup=4 * data.n_steps, n_features=32)

    # 2. Pilot to predictor: epoch-1 spectra and accuracy -> final accuracy.
    predictor = FinalAccuracyPredictor(transformer, early_score=True, epoch=1).fit(
        pilot.models(epoch=1),
        pilot.test_accuracy[:, -1],
        early_score=pilot.val_accuracy[:, 0],
    )

    # 3. A fresh population of the same search space, judged after epoch 1.
    fresh = train_rnn_population("digits", args.n_fresh, random_state=1, **settings)
    final = fresh.test_accuracy[:, -1]
    early = fresh.val_accuracy[:, 0]
    predicted = predictor.predict(fresh.models(epoch=1), early_score=early)
    rho_predicted = spearmanr(predicted, final).statistic
    rho_early = spearmanr(early, final).statistic

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, x, label, rho in (
        (left, predicted, "predicted final accuracy (epoch-1 spectra + accuracy)", rho_predicted),
        (right, early, "validation accuracy after epoch 1", rho_early),
    ):
        ax.scatter(x, final, s=18, alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy after the last epoch")
        ax.set_title(f"{len(final)} fresh networks: Spearman {rho:.2f}")
    fig.savefig(args.out, dpi=120)
    print(
        f"Fresh population of {len(final)}: Spearman with the final accuracy "
        f"{rho_predicted:.2f} (predicted after epoch 1), {rho_early:.2f} (epoch-1 accuracy)"
    )

    # 4. The same predictor as the scoring of a search over skorch nets: every
    #    candidate trains one epoch (max_epochs=1) and is scored by the final
    #    accuracy it promises; the three best are then trained to the end.
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        RecurrentClassifier,
        module__input_size=data.input_size,
        module__hidden_size=32,
        module__n_classes=data.n_classes,
        max_epochs=1,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        train_split=None,
        verbose=0,
    )
    grid = {
        "module__cell": ["GRU", "LSTM"],
        "module__init_scale": [1.0, 4.0, 16.0],
        "lr": [1e-3, 1e-2],
    }
    X, y = data.X_train[: args.max_train], data.y_train[: args.max_train]
    search = GridSearchCV(
        net,
        grid,
        scoring=predictor.as_scorer(),
        cv=KFold(3, shuffle=True, random_state=0),
        refit=False,
    ).fit(X, y)
    ranked = sorted(
        zip(search.cv_results_["mean_test_score"], search.cv_results_["params"]),
        key=lambda pair: -pair[0],
    )
    print(f"{len(ranked)} candidates trained 1 epoch each; the three most promising:")
    for promised, params in ranked[:3]:
        final_net = clone(net).set_params(**params, max_epochs=args.epochs).fit(X, y)
        accuracy = final_net.score(data.X_test, data.y_test)
        print(
            f"  {params}: predicted {promised:.2f}, test accuracy after the last epoch {accuracy:.2f}"
        )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
