"""The transformer and a grid search over it under joblib's dask backend.

A local ``dask.distributed`` cluster of two single-threaded worker processes
stands in for a real one: models (their dynamics) and estimators travel to
the workers by pickling, as they would to remote machines.
"""

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch import nn

distributed = pytest.importorskip("distributed")

from sklyap import LyapunovSpectrumTransformer


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def _models():
    """Six small models of three architectures; the global RNG is restored."""
    specs = [(nn.GRU, 4), (nn.LSTM, 3), (nn.RNN, 6), (nn.GRU, 4), (nn.LSTM, 3), (nn.RNN, 5)]
    models = []
    with torch.random.fork_rng():
        for seed, (cls, hidden) in enumerate(specs):
            torch.manual_seed(seed)
            models.append(cls(2, hidden))
    return models


def _transformer(**params):
    # The six models make four batches (the two GRUs stacked, the two LSTMs
    # stacked, each RNN alone), so n_jobs=2 has work for both workers.
    return LyapunovSpectrumTransformer(
        n_features=6,
        n_trajectories=2,
        n_steps=40,
        warmup=10,
        device="cpu",
        random_state=0,
        **params,
    )


def test_transformer_under_dask_equals_local(client):
    models = _models()
    local = _transformer(n_jobs=1).fit_transform(models)
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        remote = _transformer(n_jobs=2).fit_transform(models)
    np.testing.assert_array_equal(remote, local)
    # The batches ran as tasks on the workers.
    assert len(stream.data) == 4, stream.data


def test_grid_search_under_dask_equals_local(client):
    models = _models()
    y = np.linspace(0.2, 0.9, len(models))
    pipe = Pipeline([("lst", _transformer()), ("ridge", Ridge())])

    def search():
        return GridSearchCV(pipe, {"ridge__alpha": [0.1, 1.0]}, cv=2).fit(models, y)

    local = search()
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        remote = search()
    assert len(stream.data) >= 4  # at least the 2 x 2 fits ran on the workers
    assert remote.best_params_ == local.best_params_
    for key in (
        "params",
        "mean_test_score",
        "split0_test_score",
        "split1_test_score",
        "rank_test_score",
    ):
        np.testing.assert_array_equal(
            np.asarray(remote.cv_results_[key]), np.asarray(local.cv_results_[key])
        )
    np.testing.assert_array_equal(remote.predict(models), local.predict(models))
