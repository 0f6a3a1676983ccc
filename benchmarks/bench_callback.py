"""What the Lyapunov callback costs, against the time of training.

Trains RecurrentClassifier networks on sequential digits with skorch, with
``LyapunovCallback()`` at its default settings (4 Gaussian trajectories, 50
warm-up and 100 measured steps, full spectrum, ``every="auto"`` with a budget
of 10%), and reports the cost of one spectrum against one epoch (skorch's
``dur``), the epochs measured, and the share of the whole run spent on spectra.
Sequential digits epochs are very short (17 batches of 8-step sequences), so
one spectrum costs more than an epoch; the budget keeps the total small.

    python benchmarks/bench_callback.py [--epochs 30] [--out PATH]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklyap.callbacks import LyapunovCallback
from sklyap.datasets import RecurrentClassifier, load_sequential_digits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_callback.json")
    )
    args = parser.parse_args(argv)
    data = load_sequential_digits("row")
    rows = []
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; sequential digits, "
        f"{len(data.X_train)} training sequences of 8 steps, batch 64"
    )
    print(
        f"{'cell':5} {'N':>4} {'epoch s':>8} {'spectrum s':>11} {'spectrum/epoch':>15} "
        f"{'measured':>9} {'share of run':>13}"
    )
    for cell in ("RNN", "GRU", "LSTM"):
        for hidden in (32, 128):
            torch.manual_seed(0)
            net = NeuralNetClassifier(
                RecurrentClassifier,
                module__input_size=8,
                module__hidden_size=hidden,
                module__n_classes=10,
                module__cell=cell,
                criterion=nn.CrossEntropyLoss,
                optimizer=torch.optim.Adam,
                lr=5e-3,
                max_epochs=args.epochs,
                batch_size=64,
                train_split=None,
                callbacks=[LyapunovCallback()],
                verbose=0,
            )
            start = time.perf_counter()
            net.fit(data.X_train, data.y_train)
            total = time.perf_counter() - start
            epoch = float(np.mean(net.history[:, "dur"]))
            seconds = [row["lyapunov_seconds"] for row in net.history if "lyapunov" in row]
            measured = [row["epoch"] for row in net.history if "lyapunov" in row]
            spectrum = float(np.mean(seconds))
            share = sum(seconds) / total
            rows.append(
                {
                    "cell": cell,
                    "hidden_size": hidden,
                    "epoch_s": epoch,
                    "spectrum_s": spectrum,
                    "spectrum_per_epoch": spectrum / epoch,
                    "measured_epochs": measured,
                    "total_s": total,
                    "share_of_run": share,
                }
            )
            print(
                f"{cell:5} {hidden:>4} {epoch:>8.3f} {spectrum:>11.3f} {spectrum / epoch:>15.2f} "
                f"{len(measured):>4}/{args.epochs:<4} {share:>13.2f}",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "bench_callback",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "epochs": args.epochs,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
