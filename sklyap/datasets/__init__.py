"""Real sequence tasks and populations of networks trained on them."""

from ..cache import default_cache_dir
from ._population import RecurrentClassifier, RNNPopulation, train_rnn_population
from ._synthetic import make_spectra
from ._tasks import digit_streams, load_char_text, load_sequential_digits

__all__ = [
    "RNNPopulation",
    "RecurrentClassifier",
    "default_cache_dir",
    "digit_streams",
    "load_char_text",
    "load_sequential_digits",
    "make_spectra",
    "train_rnn_population",
]
