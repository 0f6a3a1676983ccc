"""A fitted pipeline saved with joblib predicts the same in a fresh Python process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.pipeline import Pipeline
from torch import nn

import sklyap
from sklyap import AeLLERegressor, LyapunovSpectrumTransformer

_CLASSES = (nn.RNN, nn.GRU, nn.LSTM)


def _models(n=12):
    """Small seeded RNN/GRU/LSTM models (input size 2, hidden 3-6); the global RNG is restored."""
    models = []
    with torch.random.fork_rng():
        for i in range(n):
            torch.manual_seed(i)
            models.append(_CLASSES[i % 3](2, 3 + i % 4))
    return models


def test_pipeline_predicts_identically_in_a_fresh_process(tmp_path):
    models = _models()
    y = np.array([0.1 * (i % 3) + 0.05 * (3 + i % 4) for i in range(len(models))])
    pipe = Pipeline(
        [
            (
                "lst",
                LyapunovSpectrumTransformer(
                    n_features=8,
                    n_trajectories=2,
                    n_steps=30,
                    warmup=10,
                    device="cpu",
                    random_state=0,
                ),
            ),
            (
                "aelle",
                AeLLERegressor(
                    latent_dim=2,
                    hidden_dims=(8,),
                    max_epochs=5,
                    batch_size=4,
                    early_stopping=False,
                    device="cpu",
                    random_state=0,
                ),
            ),
        ]
    )
    pipe.fit(models, y)
    expected = pipe.predict(models)
    expected_spectra = pipe[:-1].transform(models)
    assert expected.shape == (len(models),) and np.isfinite(expected).all()

    joblib.dump(pipe, tmp_path / "pipe.joblib")
    torch.save(models, tmp_path / "models.pt")
    code = textwrap.dedent(f"""
        import joblib, numpy as np, torch
        torch.set_num_threads({torch.get_num_threads()})
        pipe = joblib.load({str(tmp_path / "pipe.joblib")!r})
        models = torch.load({str(tmp_path / "models.pt")!r}, weights_only=False)
        np.save({str(tmp_path / "pred.npy")!r}, pipe.predict(models))
        np.save({str(tmp_path / "spectra.npy")!r}, pipe[:-1].transform(models))
    """)
    # The child imports the same sklyap as this process, from a clean state.
    env = dict(os.environ)
    root = str(Path(sklyap.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "spectra.npy"), expected_spectra)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), expected)
