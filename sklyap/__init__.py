"""sklyap: Lyapunov spectra of trained recurrent networks, as scikit-learn estimators."""

from .aelle import AeLLEClassifier, AeLLERegressor
from .checkpoints import load_checkpoint, module_from_state_dict
from .dynamics import Dynamics, as_dynamics, from_step
from .features import (
    SpectrumResampler,
    SpectrumStatistics,
    kaplan_yorke_dimension,
    resample_spectra,
)
from .lyapunov import LyapunovResult, lyapunov_spectrum
from .transformer import LyapunovSpectrumTransformer
from .weights import WeightStatistics

__version__ = "0.1.0.dev0"

__all__ = [
    "AeLLEClassifier",
    "AeLLERegressor",
    "Dynamics",
    "LyapunovResult",
    "LyapunovSpectrumTransformer",
    "SpectrumResampler",
    "SpectrumStatistics",
    "WeightStatistics",
    "__version__",
    "as_dynamics",
    "from_step",
    "kaplan_yorke_dimension",
    "load_checkpoint",
    "lyapunov_spectrum",
    "module_from_state_dict",
    "resample_spectra",
]
