"""sklyap: Lyapunov spectra of trained recurrent networks, as scikit-learn estimators."""

from .dynamics import Dynamics, as_dynamics, from_step
from .features import resample_spectra
from .lyapunov import LyapunovResult, lyapunov_spectrum
from .transformer import LyapunovSpectrumTransformer

__version__ = "0.1.0.dev0"

__all__ = [
    "Dynamics",
    "LyapunovResult",
    "LyapunovSpectrumTransformer",
    "as_dynamics",
    "from_step",
    "lyapunov_spectrum",
    "resample_spectra",
    "__version__",
]
