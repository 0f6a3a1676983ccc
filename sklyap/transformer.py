"""LyapunovSpectrumTransformer: trained RNNs in, Lyapunov-spectrum features out."""

from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._layout import (
    DEFAULT_WARMUP,
    check_n_exponents,
    check_warmup,
    gaussian_inputs,
    input_layout,
    resolve_batch_first,
)
from ._model_source import ModelSource, check_width
from ._planning import auto_budget
from ._validation import (
    SPECTRUM_CONSTRAINTS,
    Interval,
    Options,
    RandomStates,
    batch_of_sequences,
    check_model_list,
    validate_params,
)
from .features import resample_spectra
from .lyapunov import SpectrumSettings, run_spectra

__all__ = ["LyapunovSpectrumTransformer"]


class LyapunovSpectrumTransformer(TransformerMixin, BaseEstimator):
    """Map trained recurrent networks to their Lyapunov spectra.

    Each network is driven by the same inputs, its Lyapunov spectrum is
    computed with the QR algorithm (:func:`sklyap.lyapunov_spectrum`), and the
    spectra are returned as rows of a float64 feature matrix. Networks of
    different state sizes have spectra of different lengths; they are
    resampled onto one length by interpolation over the normalised exponent
    index (:func:`sklyap.features.resample_spectra`), and ``fit`` fixes that
    length so that networks seen later produce features of the same width.

    ``X`` is a list of models, not a 2-D array: anything
    :func:`sklyap.dynamics.as_dynamics` accepts (``nn.RNN``, ``nn.GRU``,
    ``nn.LSTM``, their ``*Cell`` forms, modules containing one, fitted skorch
    nets, or systems built with :func:`sklyap.from_step`). The models are
    never modified or moved.

    Parameters
    ----------
    inputs : array-like or Tensor, default=None
        Driving inputs shared by all models, for example sequences of the
        task the networks were trained on, laid out as the models' ``forward``
        takes them (see ``batch_first``): ``(n_trajectories, n_time_steps,
        ...)`` or ``(n_time_steps, n_trajectories, ...)``; without
        ``input_encoder``, ``(n_time_steps, input_size)`` is one trajectory.
        The first ``warmup`` steps are warm-up, the rest are measured. With
        ``input_encoder`` these are the raw task inputs (token ids, say)
        before encoding. ``None`` draws
        Gaussian inputs of standard deviation ``input_scale`` and shape
        ``(n_trajectories, warmup + n_steps, input_size)`` in ``fit``, seeded
        by ``random_state``.
    input_encoder : str or callable, default=None
        Maps raw inputs to the inputs of the recurrent core. A string is the
        attribute path of a submodule of each model (for example
        ``"embedding"``), applied to the inputs in evaluation mode on a copy;
        a callable is called as ``input_encoder(model, inputs)`` with the
        inputs as a tensor, trajectories first, and must return a tensor of
        shape ``(n_trajectories, n_time_steps, input_size)``.
    batch_first : bool, default=None
        Layout of ``inputs``: ``True`` for trajectories first, ``False`` for
        time steps first. ``None`` follows the models, as their ``forward``
        would: ``nn.RNN``/``nn.GRU``/``nn.LSTM`` by their ``batch_first``
        (``False`` unless built with ``batch_first=True``); cells and step
        functions take trajectories first. Models that disagree need it said.
    rnn : str, default=None
        Attribute path of the recurrent module when models contain several.
    n_exponents : int, default=None
        Number of leading exponents per network; ``None`` for the full
        spectrum.
    n_features : int, default=None
        Width of the output. ``None`` uses the longest spectrum among the
        models passed to ``fit``.
    n_trajectories : int, default=8
        Number of Gaussian input trajectories when ``inputs`` is None.
    n_steps : int, default=200
        Number of measured steps of the Gaussian inputs when ``inputs`` is
        None.
    warmup : int, default=100
        Warm-up steps, run but not counted.
    input_scale : float, default=1.0
        Standard deviation of the Gaussian inputs.
    qr_interval : int or "auto", default=1
        Steps between re-orthonormalisations; ``"auto"`` chooses, for each
        model, the longest interval that keeps its weakest exponent at full
        precision (see :func:`sklyap.lyapunov_spectrum`).
    orthonormalize : {"auto", "householder", "cholesky_qr2"} or callable, default="auto"
        How frames are re-orthonormalised (see :func:`sklyap.lyapunov_spectrum`).
    dtype : {"float64", "float32"}, default="float64"
        Compute dtype; log sums are accumulated in float64 either way.
    device : str, default="auto"
        ``"auto"``: the CPU on a machine without CUDA; with CUDA, the device
        the cost model predicts faster for the models
        (:func:`sklyap.lyapunov.choose_device`).
    memory_budget : int or "auto", default="auto"
        Bytes of working memory per batch of models. Models of one
        signature (kind, layers, sizes, bias) are stacked and advanced
        together, in batches that fit this budget; ``"auto"`` is half the
        free memory of a CUDA device, and 8 MiB on the CPU. ``transform``
        reads each model (and encodes its inputs) once, and holds what it
        read until the model's batch is computed, up to 8 MiB of tensor data
        (or this budget, if smaller); past it, a model is read again when its
        batch is computed, so that memory does not grow with the number of
        models.
    on_error : {"raise", "nan"}, default="raise"
        What a network that misbehaves does: weights holding NaN or inf (or
        an ``input_encoder`` returning them), a trajectory that diverges, a
        tangent frame that over- or underflows.
        ``"raise"`` stops with an error naming the model's index; ``"nan"``
        gives that model a row of NaN, warns once with the indices and the
        reasons, and computes the others. Estimators downstream refuse NaN
        rows; drop them first (see Notes).
    n_jobs : int, default=None
        Number of batches of models computed in parallel through joblib;
        ``None`` means 1 unless in a ``joblib.parallel_config`` context,
        ``-1`` all cores. Batches are split so that each worker gets at least
        two. Models that fit one batch, and work too small to pay for
        starting worker processes, run in this process. Under joblib's Dask
        backend the cluster decides instead: every batch is sent to it (see
        ``docs/distributed.md``).
    num_threads : "auto", int or None, default="auto"
        Torch CPU threads per batch. ``"auto"``: when the models fit one
        batch, the calling process's thread count if its frames hold more than
        ``2**15`` numbers and one thread otherwise; when they need several
        batches, one thread per batch (batches are parallelised with
        ``n_jobs``; threads in every worker would oversubscribe the cores).
        The count never depends on ``n_jobs``, so neither do the rows, bit for
        bit. An int sets the count; ``None`` keeps the setting of the process
        that computes (in joblib's workers, the cores divided by ``n_jobs``).
        Ignored on CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian inputs.
    verbose : int, default=0
        ``1`` shows a progress bar over models.

    Attributes
    ----------
    inputs_ : ndarray of shape (n_trajectories, n_time_steps, ...)
        The driving inputs used for every model, trajectories first.
    batch_first_ : bool
        The layout ``inputs`` were read in.
    n_features_out_ : int
        Width of the output.
    state_sizes_ : ndarray of shape (n_models,)
        State sizes of the models seen in ``fit``.

    Notes
    -----
    Networks in training mode are measured as in evaluation mode: the
    dynamics use copies of the weights without dropout, and a string
    ``input_encoder`` or a callable one is given an evaluation-mode copy of
    the model. The models passed in are never modified or moved, even when
    a computation is interrupted.

    With ``on_error="nan"``, keep the rows that were computed::

        X = LyapunovSpectrumTransformer(on_error="nan").fit_transform(models)
        kept = np.isfinite(X).all(axis=1)
        AeLLERegressor().fit(X[kept], y[kept])

    See Also
    --------
    sklyap.lyapunov_spectrum : The spectrum of a single model.
    sklyap.features.resample_spectra : The resampling onto a common width.

    Examples
    --------
    >>> from torch import nn
    >>> from sklyap import LyapunovSpectrumTransformer
    >>> models = [nn.GRU(2, 4), nn.LSTM(2, 4), nn.RNN(2, 8)]
    >>> lst = LyapunovSpectrumTransformer(n_features=6, n_trajectories=2,
    ...                                   n_steps=50, warmup=20, random_state=0)
    >>> features = lst.fit_transform(models)
    >>> features.shape
    (3, 6)
    >>> lst.get_feature_names_out()[:2]
    array(['lyapunov0', 'lyapunov1'], dtype=object)
    """

    def __init__(
        self,
        inputs=None,
        *,
        input_encoder=None,
        batch_first=None,
        rnn=None,
        n_exponents=None,
        n_features=None,
        n_trajectories=8,
        n_steps=200,
        warmup=DEFAULT_WARMUP,
        input_scale=1.0,
        qr_interval=1,
        orthonormalize="auto",
        dtype="float64",
        device="auto",
        memory_budget="auto",
        on_error="raise",
        n_jobs=None,
        num_threads="auto",
        random_state=None,
        verbose=0,
    ):
        self.inputs = inputs
        self.input_encoder = input_encoder
        self.batch_first = batch_first
        self.rnn = rnn
        self.n_exponents = n_exponents
        self.n_features = n_features
        self.n_trajectories = n_trajectories
        self.n_steps = n_steps
        self.warmup = warmup
        self.input_scale = input_scale
        self.qr_interval = qr_interval
        self.orthonormalize = orthonormalize
        self.dtype = dtype
        self.device = device
        self.memory_budget = memory_budget
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose

    # -- validation --------------------------------------------------------------------

    _parameter_constraints: ClassVar[dict] = {
        **SPECTRUM_CONSTRAINTS,
        "inputs": "no_validation",  # in fit, with the models' layout
        "input_encoder": "no_validation",  # a path or a callable, below
        "rnn": "no_validation",  # as_dynamics
        "n_features": [Interval(int, 1, None), Options(None)],
        "n_trajectories": [Interval(int, 1, None)],
        "n_steps": [Interval(int, 1, None)],
        "input_scale": [Interval(float, 0, None, closed="neither")],
        "dtype": "no_validation",  # SpectrumSettings.checked
        "device": "no_validation",  # SpectrumSettings.checked
        "random_state": [RandomStates()],
    }

    def _check_params(self):
        """Check every parameter; return the :class:`SpectrumSettings` they make."""
        params = self.get_params(deep=False)
        own = {
            k: v for k, v in self._parameter_constraints.items() if k not in SPECTRUM_CONSTRAINTS
        }
        validate_params(params, own)
        encoder = self.input_encoder
        if encoder is not None and not (isinstance(encoder, str) or callable(encoder)):
            raise TypeError(
                "input_encoder must be a submodule path (str), a callable "
                f"(model, inputs) -> Tensor, or None; got {encoder!r}"
            )
        if encoder is not None and self.inputs is None:
            raise ValueError(
                "input_encoder needs task inputs: pass inputs= (the raw inputs the "
                "encoder maps), not None"
            )
        return SpectrumSettings.checked(
            dtype=self.dtype,
            device=self.device,
            **{name: params[name] for name in SPECTRUM_CONSTRAINTS},
        )

    def _sources(self, X, *, encode=True, hold_bytes=0):
        """One source per model, read and checked once, before any spectrum.

        Each model is read into its dynamics (refused with its index if it
        cannot be), ``n_exponents`` is checked against every state size, then
        (with an input encoder and ``encode``) each model's inputs are encoded
        and checked. Sources keep what they read while the total stays within
        ``hold_bytes``; the others keep only their shell and read the model
        again when its batch is sent, so memory does not grow with the
        number of models.
        """
        X = check_model_list(X, "RNN modules or sklyap Dynamics")
        sources, held = [], 0

        def keep(source):
            # A model refused for its weights is never computed: nothing of it is held.
            nonlocal held
            if source.shell.nonfinite_parameters or held + source.nbytes > hold_bytes:
                source.release()
            held += source.nbytes

        inputs = getattr(self, "inputs_", None) if encode else None
        for index, model in enumerate(X):
            sources.append(
                ModelSource(
                    model, index, rnn=self.rnn, on_error=self.on_error,
                    encoder=self.input_encoder, inputs=inputs,
                )
            )  # fmt: skip
            keep(sources[-1])
        check_n_exponents(self.n_exponents, [s.shell.state_size for s in sources])
        if not encode:
            return sources
        if self.input_encoder is None:
            for index, source in enumerate(sources):
                check_width(self.inputs_.shape[-1], source.shell, index)
            return sources
        for source in sources:  # each in turn adds its inputs to what it holds
            held -= source.nbytes
            source.encode()
            keep(source)
        return sources

    def _raw_inputs(self, batch_first, source):
        raw = self.inputs
        shape = tuple(np.shape(raw))
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().numpy()
        raw = np.array(raw, copy=True)
        if raw.dtype.kind not in "iuf":
            raise TypeError(f"inputs must hold numbers, got dtype {raw.dtype}")
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise ValueError("inputs hold NaN or infinite values")
        if self.input_encoder is None:
            if raw.ndim == 3 and not batch_first:
                raw = raw.swapaxes(0, 1).copy()
            raw = batch_of_sequences(raw).astype(np.float64, copy=False)
        elif raw.ndim >= 2 and not batch_first:
            raw = raw.swapaxes(0, 1).copy()
        if raw.ndim < 2:
            raise ValueError(
                f"inputs must have at least 2 dimensions (n_trajectories, n_time_steps, ...), "
                f"got shape {raw.shape}"
            )
        if raw.shape[0] == 0:
            raise ValueError(f"inputs hold no trajectory: shape {shape}")
        check_warmup(
            self.warmup, raw.shape[1], shape, batch_first, source,
            encoded=self.input_encoder is not None,
        )  # fmt: skip
        return raw

    # -- estimator API -----------------------------------------------------------------

    def fit(self, X, y=None):
        """Fix the driving inputs and the output width from a list of models.

        No spectrum is computed here: fitting only decides what ``transform``
        will do, so that all models are measured the same way.

        Parameters
        ----------
        X : list of models
            Recurrent networks (see the class docstring).
        y : None
            Ignored.

        Returns
        -------
        self : LyapunovSpectrumTransformer
        """
        self._check_params()
        dynamics = [source.shell for source in self._sources(X, encode=False)]
        if self.inputs is None:
            sizes = sorted({d.input_size for d in dynamics}, key=str)
            if len(sizes) != 1 or sizes[0] is None:
                raise ValueError(
                    "Gaussian inputs need one input size shared by all models; the "
                    f"models have input sizes {sizes}. Pass inputs= explicitly."
                )
            inputs = gaussian_inputs(
                self.n_trajectories,
                self.warmup + self.n_steps,
                sizes[0],
                scale=self.input_scale,
                random_state=self.random_state,
            )
            self.inputs_ = inputs.numpy()
            self.batch_first_ = True
        else:
            self.batch_first_, source = input_layout(dynamics, self.batch_first)
            self.inputs_ = self._raw_inputs(self.batch_first_, source)
        sizes = np.array([d.state_size for d in dynamics])
        lengths = sizes if self.n_exponents is None else np.minimum(sizes, self.n_exponents)
        self.state_sizes_ = sizes
        self.n_features_out_ = (
            int(lengths.max()) if self.n_features is None else int(self.n_features)
        )
        return self

    def _spectra(self, X):
        """Yield ``(index, LyapunovResult)`` for every model, batch by batch.

        Everything is checked before the first spectrum is computed; the
        results are yielded as batches finish, so that a caller keeping only
        the exponents holds nothing else.
        """
        check_is_fitted(self, "n_features_out_")
        settings = self._check_params()
        budget = settings.memory_budget
        # What is held of models read ahead: the CPU's budget, or less.
        hold = auto_budget("cpu")
        sources = self._sources(X, hold_bytes=hold if budget == "auto" else min(budget, hold))
        if self.inputs is not None:
            layout = resolve_batch_first([s.shell for s in sources], self.batch_first)
            if layout is not None and layout != self.batch_first_:
                raise ValueError(
                    f"the models take batch_first={layout} inputs, but fit read the inputs "
                    f"as batch_first={self.batch_first_} (from the models it was given); "
                    "pass batch_first= to fix the layout of the inputs"
                )
        # Without an encoder every model is driven by the fitted inputs; with
        # one, each source reads inputs of its own, of the fitted (B, T).
        shared = self.input_encoder is None
        yield from run_spectra(
            sources,
            torch.tensor(self.inputs_, dtype=torch.float64)
            if shared
            else tuple(self.inputs_.shape[:2]),
            settings,
            n_jobs=self.n_jobs,
            progress="models" if self.verbose else None,
            warn_failed=True,
        )

    def compute_spectra(self, X):
        """Lyapunov spectra of the models, before resampling.

        Parameters
        ----------
        X : list of models

        Returns
        -------
        list of LyapunovResult
            One result per model, in the order of ``X``, with per-trajectory
            spectra and standard errors. With ``on_error="nan"`` a model that
            could not be measured has NaN arrays and its ``error`` says why.
        """
        results = {}
        for index, result in self._spectra(X):
            results[index] = result
        return [results[i] for i in range(len(results))]

    def transform(self, X):
        """Lyapunov-spectrum features of each model.

        Parameters
        ----------
        X : list of models

        Returns
        -------
        ndarray of shape (n_models, `n_features_out_`)
            Exponents in descending order (natural log per step), resampled
            onto ``n_features_out_`` points; float64. With
            ``on_error="nan"``, a row of NaN for each model that could not be
            measured.
        """
        out = None
        for index, result in self._spectra(X):  # X is checked at the first result
            if out is None:
                out = np.full((len(X), self.n_features_out_), np.nan)
            if result.error is None:
                # Kept: the exponents, resampled; the rest of the result is freed.
                out[index] = resample_spectra(result.exponents, self.n_features_out_)
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``lyapunov0``, ``lyapunov1``, ...

        Parameters
        ----------
        input_features : None
            Ignored; the inputs are models, not named columns.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"lyapunov{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a list of models, not an array (as for the text vectorizers).
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
