"""sklyap: Lyapunov spectra of trained recurrent networks, as scikit-learn estimators."""

from .aelle import AeLLERegressor
from .features import (
    SpectrumResampler,
    SpectrumStatistics,
    kaplan_yorke_dimension,
    resample_spectra,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AeLLERegressor",
    "SpectrumResampler",
    "SpectrumStatistics",
    "kaplan_yorke_dimension",
    "resample_spectra",
    "__version__",
]
