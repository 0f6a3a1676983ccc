"""The study's tasks: how each population is trained and how its networks are driven."""

from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

from ..datasets import digit_streams, load_char_text, load_sequential_digits

__all__ = ["TASKS", "StudyTask"]


@dataclass(frozen=True)
class StudyTask:
    """A population of trained networks and the inputs that drive them.

    Attributes
    ----------
    name : str
        The task's key in :data:`TASKS` and on the command line.
    title : str
        A few words for tables and figures.
    population : dict
        Keyword arguments of :func:`~sklyap.datasets.train_rnn_population`
        (the task, cells, sizes, initialisation and learning-rate ranges,
        epochs).
    n_models : int
        Default population size.
    early_epoch : int
        The epoch after which the early spectra are taken.
    n_trajectories : int
        Driving trajectories per network.
    n_units : int
        Length of a trajectory in the task's units (images, or windows of
        text), of which ``warmup_units`` are warm-up.
    warmup_units : int
    input_encoder : str or None
        How the core reads the raw inputs (``"embedding"`` for token ids).
    """

    name: str
    title: str
    population: dict = field(repr=False)
    n_models: int = 200
    early_epoch: int = 1
    n_trajectories: int = 8
    n_units: int = 40
    warmup_units: int = 8
    input_encoder: str = None

    def _data(self):
        if self.population["task"] == "char_text":
            return load_char_text(seq_len=50, encoding="ids")
        return load_sequential_digits(
            "pixel" if self.population["task"] == "digits_pixel" else "row"
        )

    def driving_inputs(self, split, random_state):
        """Inputs of the ``split`` ("val" or "test") that drive every network.

        Digits: streams of ``n_units`` random images read one after another.
        Text: ``n_units`` consecutive windows of the split, joined back into
        contiguous text (token ids).

        Returns
        -------
        inputs : ndarray of shape (n_trajectories, n_time_steps, ...)
        warmup : int
            Warm-up steps (``warmup_units`` units).
        """
        data = self._data()
        rng = check_random_state(random_state)
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if self.population["task"] == "char_text":
            # A window's inputs and its last target are 51 consecutive characters.
            text = np.concatenate([X, y[:, -1:]], axis=1)
            starts = rng.randint(0, len(text) - self.n_units, size=self.n_trajectories)
            inputs = np.stack([text[s : s + self.n_units].reshape(-1) for s in starts])
            return inputs, self.warmup_units * text.shape[1]
        inputs = digit_streams(X, self.n_trajectories, self.n_units, rng)
        return inputs, self.warmup_units * data.n_steps


_RANGES = {"init_scale_range": (0.5, 20.0), "learning_rate_range": (3e-3, 1e-2)}

#: The study's tasks. Populations follow the AeLLE paper's design: the
#: initialisation scale, which decides whether a network trains, varies over
#: a wide range (0.5 to 20 times PyTorch's), the learning rate over a narrow
#: one in which Adam trains well.
TASKS = {
    "digits": StudyTask(
        name="digits",
        title="digits, row by row (8 steps)",
        population=dict(task="digits", n_epochs=10, **_RANGES),
        n_units=40,
        warmup_units=8,
    ),
    "digits_pixel": StudyTask(
        name="digits_pixel",
        title="digits, pixel by pixel (64 steps)",
        population=dict(task="digits_pixel", n_epochs=15, **_RANGES),
        n_units=8,
        warmup_units=2,
    ),
    "char_text": StudyTask(
        name="char_text",
        title="next character of Python's documentation (LSTMs)",
        population=dict(task="char_text", cells=("LSTM",), n_epochs=6, max_train=3000, **_RANGES),
        n_units=8,
        warmup_units=2,
        input_encoder="embedding",
    ),
}
