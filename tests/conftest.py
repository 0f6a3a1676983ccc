import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``cuda`` on machines without a CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded_torch():
    """Every test starts from one state of torch's global generator, so that the
    networks a test builds without a seed of its own do not depend on which
    tests ran before it (in this process, under pytest-xdist's workers)."""
    torch.manual_seed(0)


@pytest.fixture
def workers(monkeypatch):
    """Send work to joblib's worker processes however small it is (n_jobs > 1).

    sklyap computes small work in-process whatever ``n_jobs``; tests of the
    worker path use this fixture to take it anyway.
    """
    import sklyap._planning

    monkeypatch.setattr(sklyap._planning, "WORKER_START_SECONDS", 0.0)


@pytest.fixture
def session_matplotlib():
    """matplotlib as a user's session may have it: the svg backend, chosen by the
    user. Yields a function that is True while the backend and pyplot's open
    figures are as they were; the backend is restored afterwards, whatever the
    test did."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    matplotlib.use("svg")
    before = plt.get_fignums()
    yield lambda: (matplotlib.get_backend(), plt.get_fignums()) == ("svg", before)
    matplotlib.use(backend)
