"""
How the Lyapunov spectrum of a recurrent network changes with its weight scale
==============================================================================

PyTorch initialises recurrent weights uniformly in ``(-1/sqrt(N), 1/sqrt(N))``.
Scaling that range by a gain ``g`` moves a network from strongly contracting
dynamics (every exponent well below zero: it forgets its past quickly), through
the edge of chaos (largest exponent near zero: long memory), into chaos
(positive exponents: small differences are amplified). This script computes the
full spectrum of RNN, GRU and LSTM networks over a range of gains, driven by the
same Gaussian inputs, and plots the exponents against their normalised index.

    python examples/plot_spectrum_vs_gain.py [--hidden-size 32] [--out spectrum_vs_gain.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sklyap import LyapunovSpectrumTransformer


def networks(kind, hidden_size, gains, seed=0):
    torch.manual_seed(seed)
    models = []
    for gain in gains:
        model = getattr(nn, kind)(1, hidden_size)
        with torch.no_grad():
            model.weight_hh_l0.mul_(gain)
        models.append(model)
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="How the Lyapunov spectrum of a recurrent network changes with its weight scale"
    )
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--n-steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", default="spectrum_vs_gain.png")
    args = parser.parse_args(argv)

    gains = [0.5, 1.0, 2.0, 4.0, 8.0]
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(gains)))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True, layout="constrained")
    for ax, kind in zip(axes, ("RNN", "GRU", "LSTM")):
        models = networks(kind, args.hidden_size, gains)
        lst = LyapunovSpectrumTransformer(
            n_trajectories=4, n_steps=args.n_steps, warmup=args.warmup, random_state=0
        ).fit(models)
        for gain, colour, result in zip(gains, colours, lst.compute_spectra(models)):
            index = np.linspace(0, 1, result.n_exponents)
            ax.plot(index, result.exponents, color=colour, label=f"gain {gain:g}")
            ax.fill_between(
                index,
                result.exponents - 2 * result.stderr,
                result.exponents + 2 * result.stderr,
                color=colour,
                alpha=0.2,
            )
            print(
                f"{kind:4} gain {gain:>4g}: lambda_1 = {result.exponents[0]:+.3f} "
                f"+- {result.stderr[0]:.3f}"
            )
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{kind}, hidden size {args.hidden_size}")
        ax.set_xlabel("normalised exponent index")
    axes[0].set_ylabel("Lyapunov exponent (nats / step)")
    axes[0].set_ylim(bottom=max(axes[0].get_ylim()[0], -6))
    axes[-1].legend(loc="lower left")
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
