"""
AeLLE on a population of trained RNNs: an embedding of spectra that predicts accuracy
=====================================================================================

A sweep of RNN/GRU/LSTM networks is trained on sequential digits (cached on
disk after the first run). Every network is driven by the same streams of
validation digits; its Lyapunov spectrum becomes one row of a feature matrix.
:class:`sklyap.AeLLERegressor` learns a latent embedding of those spectra
jointly with a head that predicts each network's test accuracy. The figure
shows the embedding coloured by accuracy and cross-validated predictions.

    python examples/plot_aelle_population.py [--n-models 40] [--out aelle_population.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from sklyap import AeLLERegressor, LyapunovSpectrumTransformer
from sklyap.datasets import digit_streams, load_sequential_digits, train_rnn_population
from sklyap.plotting import plot_embedding, plot_predicted_vs_true


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="AeLLE on a population of trained RNNs: an embedding of spectra that predicts accuracy"
    )
    parser.add_argument("--n-models", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--n-images", type=int, default=40, help="digits per driving stream")
    parser.add_argument("--out", default="aelle_population.png")
    args = parser.parse_args(argv)

    population = train_rnn_population(
        "digits", args.n_models, n_epochs=args.epochs, max_train=args.max_train, verbose=0
    )
    accuracy = population.test_accuracy[:, -1]
    data = load_sequential_digits("row")
    streams = digit_streams(data.X_val, n_trajectories=8, n_images=args.n_images, random_state=0)

    # Spectra (resampled onto 32 exponents) -> AeLLE, as one scikit-learn pipeline
    # whose input is the list of trained networks.
    pipeline = make_pipeline(
        LyapunovSpectrumTransformer(streams, warmup=8 * data.n_steps, n_features=32),
        AeLLERegressor(random_state=0),
    )
    models = population.models()
    spectra = pipeline[0].fit_transform(models)
    predicted = cross_val_predict(
        pipeline[1], spectra, accuracy, cv=KFold(5, shuffle=True, random_state=0)
    )
    pipeline.fit(models, accuracy)
    embedding = pipeline.transform(models)  # the latent codes of the fitted AeLLE

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    plot_embedding(embedding, accuracy, ax=left, label="test accuracy")
    left.set_title(f"AeLLE embedding of {len(models)} networks")
    plot_predicted_vs_true(accuracy, predicted, ax=right)
    right.set_title("5-fold cross-validated prediction, " + right.get_title())
    fig.savefig(args.out, dpi=120)
    rho = np.corrcoef(np.argsort(np.argsort(accuracy)), np.argsort(np.argsort(predicted)))[0, 1]
    print(
        f"{len(models)} networks, test accuracy {accuracy.min():.2f} to {accuracy.max():.2f}; "
        f"cross-validated Spearman correlation of predictions {rho:.2f}"
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
