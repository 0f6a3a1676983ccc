"""The AeLLE study: do Lyapunov spectra predict how well trained RNNs perform?

:func:`run_study` trains (or loads) a population of networks for one of the
:data:`TASKS`, takes their spectra early and late in training, and compares
predictors of each network's final accuracy with repeated, grouped
cross-validation on identical splits; :meth:`StudyResult.pool` joins the
studies of independent populations (other seeds) into one paired comparison.
``python -m sklyap demo`` and ``python -m sklyap study --task ... --seed ...``
run it. :func:`run_sweep` (``python -m sklyap sweep``) replays Optuna
studies over the recorded populations to measure what pruning by the spectra
saves, every epoch counted; :func:`transfer_study` what can be said with no
finished trial.
"""

from ._evaluation import Predictor, top_quartile_precision
from ._result import StudyResult
from ._run import make_predictors, population_features, run_study
from ._sweep import SweepResult, run_sweep
from ._tasks import TASKS, StudyTask
from ._transfer import TransferResult, transfer_study

__all__ = [
    "TASKS",
    "Predictor",
    "StudyResult",
    "StudyTask",
    "SweepResult",
    "TransferResult",
    "make_predictors",
    "population_features",
    "run_study",
    "run_sweep",
    "top_quartile_precision",
    "transfer_study",
]
