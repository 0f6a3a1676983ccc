"""
Lyapunov spectra during training, recorded by a skorch callback
===============================================================

An LSTM learns to classify handwritten digits read row by row. After every
epoch, :class:`sklyap.callbacks.LyapunovCallback` computes the spectrum of the
network driven by streams of validation digits and records it in the net's
history, next to the loss and accuracy. The figure shows the spectra moving as
the network learns, and the largest exponent against validation accuracy.

    python examples/plot_training_spectra.py [--epochs 12] [--out training_spectra.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn

from sklyap import LyapunovSpectrumTransformer
from sklyap.callbacks import LyapunovCallback
from sklyap.datasets import RecurrentClassifier, digit_streams, load_sequential_digits


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Lyapunov spectra during training, recorded by a skorch callback"
    )
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--n-images", type=int, default=30, help="digits per driving stream")
    parser.add_argument("--out", default="training_spectra.png")
    args = parser.parse_args(argv)

    data = load_sequential_digits("row")
    streams = digit_streams(data.X_val, n_trajectories=4, n_images=args.n_images, random_state=0)
    settings = LyapunovSpectrumTransformer(streams, warmup=5 * data.n_steps, device="cpu")
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        RecurrentClassifier,
        module__input_size=data.input_size,
        module__hidden_size=args.hidden_size,
        module__n_classes=data.n_classes,
        module__cell="LSTM",
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=5e-3,
        max_epochs=args.epochs,
        batch_size=64,
        train_split=predefined_split(Dataset(data.X_val, data.y_val)),
        callbacks=[LyapunovCallback(settings, every=1)],
        verbose=0,
    )
    net.fit(data.X_train, data.y_train)

    history = net.history
    epochs = np.array(history[:, "epoch"])
    spectra = np.array(history[:, "lyapunov"])
    accuracy = np.array(history[:, "valid_acc"])
    spent = np.array(history[:, "lyapunov_seconds"])
    duration = np.array(history[:, "dur"])
    for e, s, a in zip(epochs, spectra, accuracy):
        print(
            f"epoch {e:2d}: validation accuracy {a:.3f}, lambda_1 = {s[0]:+.3f}, "
            f"lambda_n = {s[-1]:+.3f}"
        )
    print(
        f"spectra took {spent.sum():.1f} s of {duration.sum():.1f} s of training "
        f"({100 * spent.sum() / duration.sum():.0f}%)"
    )

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(epochs)))
    index = np.linspace(0, 1, spectra.shape[1])
    for e, s, c in zip(epochs, spectra, colours):
        left.plot(index, s, color=c, label=f"epoch {e}" if e in (epochs[0], epochs[-1]) else None)
    left.axhline(0, color="0.5", lw=0.8, ls="--")
    left.set_xlabel("normalised exponent index")
    left.set_ylabel("Lyapunov exponent (nats / step)")
    left.set_title(f"LSTM({args.hidden_size}) spectra during training")
    left.legend()
    right.plot(epochs, spectra[:, 0], "o-", color="C3", label=r"$\lambda_1$")
    right.set_xlabel("epoch")
    right.set_ylabel(r"largest exponent $\lambda_1$", color="C3")
    twin = right.twinx()
    twin.plot(epochs, accuracy, "s-", color="C0")
    twin.set_ylabel("validation accuracy", color="C0")
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
