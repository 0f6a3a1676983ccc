"""AeLLE: autoencoder Lyapunov latent embeddings that predict how networks perform.

An autoencoder compresses each network's spectrum into a small latent code and
reconstructs it; a head reads the network's accuracy (:class:`AeLLERegressor`)
or class (:class:`AeLLEClassifier`) off the same code. Training both jointly
shapes the latent space so that networks of similar quality land together.
Each estimator is an ensemble of such networks trained at once, in a skorch
training loop.
"""

from ._classifier import AeLLEClassifier
from ._regressor import AeLLERegressor

__all__ = ["AeLLEClassifier", "AeLLERegressor"]
