"""AeLLE: an autoencoder latent embedding of Lyapunov spectra.

An autoencoder compresses each network's spectrum into a small latent code and
reconstructs it; a linear head reads the network's accuracy off the same
code. Training both jointly (loss = L1 reconstruction + ``alpha`` * MSE
prediction) shapes the latent space so that networks of similar quality land
together. :class:`AeLLERegressor` wraps the torch module and a skorch training
loop in a scikit-learn regressor and transformer.
"""

import copy
import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn
from torch.nn import functional as F

from ._validation import check_device, check_int, check_num_threads, threads_for, torch_threads
from .features import check_no_failed_rows

__all__ = ["AeLLERegressor"]

_ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}

# Gains for the uniform (Glorot) initialisation of a layer followed by each
# activation, as recommended by torch.nn.init.calculate_gain.
_GAINS = {
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "elu": math.sqrt(2.0),
    "gelu": math.sqrt(2.0),
    "sigmoid": 1.0,
    "identity": 1.0,
}

_INFERENCE_BATCH = 8192


class _AeLLEModule(nn.Module):
    """Encoder -> latent -> (decoder, linear head).

    ``forward`` returns the reconstruction and the prediction concatenated
    column-wise, shape ``(n, n_features + 1)``, so that a plain skorch
    ``NeuralNet`` can train it against the target ``[X, y]``.

    All randomness (initial weights, dropout masks) comes from generators
    seeded with ``seed``; the global torch RNG is never drawn from.
    """

    def __init__(self, n_features, latent_dim, hidden_dims, activation, dropout, seed):
        super().__init__()
        self.n_features = n_features
        self.latent_dim = latent_dim
        self.activation = activation
        self.dropout = dropout
        self.seed = int(seed)
        self._dropout_generator = None

        sizes = [n_features, *hidden_dims, latent_dim]
        self.encoder = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        back = sizes[::-1]
        self.decoder = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b) for a, b in zip(back[:-1], back[1:])
        )
        self.head = nn.utils.skip_init(nn.Linear, latent_dim, 1)

        init = torch.Generator().manual_seed(self.seed)
        gain = _GAINS[activation]
        with torch.no_grad():
            for layers in (self.encoder, self.decoder):
                for i, layer in enumerate(layers):
                    # Layers followed by the nonlinearity get its gain; the
                    # last (linear) layer of each stack gets gain 1.
                    g = gain if i < len(layers) - 1 else 1.0
                    self._glorot(layer, g, init)
            self._glorot(self.head, 1.0, init)

    @staticmethod
    def _glorot(layer, gain, generator):
        fan_out, fan_in = layer.weight.shape
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.zero_()

    def _drop(self, x):
        if not self.training or self.dropout == 0.0:
            return x
        gen = self._dropout_generator
        if gen is None or gen.device != x.device:
            gen = torch.Generator(device=x.device)
            gen.manual_seed(self.seed + 1)
            self._dropout_generator = gen
        keep = 1.0 - self.dropout
        mask = torch.empty_like(x).bernoulli_(keep, generator=gen)
        return x * mask / keep

    def _stack(self, layers, x):
        act = _ACTIVATIONS[self.activation]
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            x = layer(x)
            if i < last:
                x = self._drop(act(x))
        return x

    def encode(self, x):
        return self._stack(self.encoder, x)

    def decode(self, z):
        return self._stack(self.decoder, z)

    def forward(self, x):
        z = self.encode(x)
        return torch.cat([self.decode(z), self.head(z)], dim=1)

    def __getstate__(self):
        # A dropout generator is a device object (a CUDA generator cannot be
        # unpickled without CUDA) and is only needed during training; it is
        # recreated on demand.
        state = self.__dict__.copy()
        state["_dropout_generator"] = None
        return state


class _AeLLELoss(nn.Module):
    """Mean absolute reconstruction error + alpha * mean squared prediction error.

    ``y_pred`` and ``y_true`` hold ``[X, y]`` column-wise (standardised).
    """

    def __init__(self, n_features, alpha):
        super().__init__()
        self.n_features = n_features
        self.alpha = alpha

    def forward(self, y_pred, y_true):
        d = self.n_features
        reconstruction = F.l1_loss(y_pred[:, :d], y_true[:, :d])
        prediction = F.mse_loss(y_pred[:, d:], y_true[:, d:])
        return reconstruction + self.alpha * prediction


def _standardise_stats(A):
    """Column means and standard deviations; a constant column gets scale 1."""
    mean = A.mean(axis=0)
    scale = A.std(axis=0)
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale = np.where(scale <= tiny, 1.0, scale)
    return mean, scale


def _n_valid(n_samples, validation_fraction):
    """ceil(fraction * n), ignoring rounding noise (0.1 * 120 is 12, not 13)."""
    return math.ceil(round(validation_fraction * n_samples, 9))


def _split_indices(n_samples, validation_fraction, seed):
    """Random (train, validation) index arrays; ceil(fraction * n) for validation."""
    n_valid = _n_valid(n_samples, validation_fraction)
    perm = np.random.RandomState(seed).permutation(n_samples)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class AeLLERegressor(RegressorMixin, TransformerMixin, BaseEstimator):
    """Autoencoder Lyapunov latent embedding (AeLLE) that predicts accuracy.

    An autoencoder maps each spectrum (a row of ``X``) through an encoder
    ``n_features -> hidden_dims -> latent_dim`` and back through the mirrored
    decoder, while a linear head predicts the target (typically the network's
    accuracy) from the latent code. Both are trained jointly on

        ``loss = mean |X_hat - X| + alpha * mean (y_hat - y)**2``

    where ``X`` (per column) and ``y`` are standardised inside the estimator,
    so that ``alpha`` weighs the two terms the same way on any data;
    :meth:`predict` returns ``y`` in the user's units. The latent code,
    returned by :meth:`transform`, is an embedding of "how a network
    computes" in which networks of similar quality land together.

    Training is a skorch loop (Adam, mini-batches) built in :meth:`fit` and
    stored as ``net_``. With ``early_stopping=True``, a random
    ``validation_fraction`` of the samples is held out; training stops when
    the validation loss has not improved for ``n_iter_no_change`` epochs and
    the weights of the best epoch, copied by value when they were reached,
    are restored.

    Spectra of different lengths must first be brought onto one axis, e.g.
    with :class:`~sklyap.SpectrumResampler` in a pipeline; ``X`` itself may
    not hold NaN.

    Parameters
    ----------
    latent_dim : int, default=8
        Dimension of the latent code, at least 1.
    hidden_dims : tuple of int, default=(128, 64)
        Widths of the encoder's hidden layers; the decoder mirrors them. May be
        empty (a linear encoder and decoder).
    alpha : float, default=1.0
        Weight of the prediction loss relative to the reconstruction loss,
        ``>= 0``. With ``alpha=0`` the head is not trained and :meth:`predict`
        is meaningless; the estimator is then a plain autoencoder.
    activation : {"tanh", "relu", "elu", "gelu", "sigmoid", "identity"}, \
            default="tanh"
        Nonlinearity after each hidden layer. The latent code and the outputs
        are linear.
    dropout : float, default=0.1
        Dropout probability after each hidden layer during training, in
        ``[0, 1)``.
    lr : float, default=1e-3
        Learning rate of the Adam optimiser, ``> 0``.
    max_epochs : int, default=200
        Maximum number of passes over the training data.
    batch_size : int, default=64
        Mini-batch size.
    early_stopping : bool, default=True
        Whether to hold out a validation split, stop when its loss stalls and
        restore the best weights. When False, all samples are used for
        training during ``max_epochs`` epochs.
    validation_fraction : float, default=0.1
        Fraction of the samples held out for early stopping, in ``(0, 1)``;
        ``ceil(validation_fraction * n_samples)`` samples are held out and at
        least 2 must remain for training.
    n_iter_no_change : int, default=20
        Number of epochs without improvement of the validation loss (by a
        relative 1e-4) after which training stops.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when it is available, else the CPU; ``"cpu"``,
        ``"cuda"`` and ``"cuda:N"`` select a device explicitly.
    num_threads : "auto", int or None, default="auto"
        Torch CPU threads while fitting and predicting (restored afterwards).
        ``"auto"`` uses one: the layers are small, so threads gain nothing on a
        quiet machine (4.1 s with one thread, 4.2 s with two, to fit 1,000
        spectra of length 256) and lose much when another process holds a
        core (5.9 s against 86 s). ``None`` keeps torch's setting. Ignored on
        CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the dropout masks, the mini-batch order and
        the validation split, through local generators (the global torch RNG
        is neither read nor reseeded). Pass an int for reproducible results:
        the same ``random_state`` on the same data and device gives identical
        predictions.
    verbose : int, default=0
        ``0`` is silent; ``1`` prints one line per epoch (train and validation
        loss, duration); ``2`` also shows a tqdm progress bar over batches.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module and
        ``net_.history`` the per-epoch record.
    device_ : str
        The device the net lives on.
    n_features_in_ : int
        Number of features (spectrum length) seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` had string column names.
    x_mean_, x_scale_ : ndarray of shape (n_features_in_,)
        Column means and standard deviations used to standardise ``X``
        (a constant column has scale 1).
    y_mean_, y_scale_ : float
        Mean and standard deviation used to standardise ``y``.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        The (1-based) epoch whose weights were kept: the best validation epoch
        with early stopping, else the last one.
    loss_curve_ : ndarray of shape (n_iter_,)
        Training loss per epoch (standardised units).
    validation_loss_curve_ : ndarray of shape (n_iter_,) or None
        Validation loss per epoch; None without early stopping.

    See Also
    --------
    SpectrumResampler : Puts spectra of different lengths on one axis.
    SpectrumStatistics : Hand-made spectrum features, for a baseline.

    Notes
    -----
    Two simple baselines to compare AeLLE with are
    ``make_pipeline(SpectrumStatistics(), RidgeCV())`` (summary statistics
    of each spectrum) and ``make_pipeline(StandardScaler(), RidgeCV())`` on
    the raw (resampled) spectra.

    Pickled estimators trained on a CUDA device load on a machine without
    CUDA: the tensors are mapped to the CPU and ``device_`` becomes ``"cpu"``
    (with a warning).

    Examples
    --------
    >>> import numpy as np
    >>> from sklyap import AeLLERegressor
    >>> rng = np.random.default_rng(0)
    >>> top = rng.uniform(-0.5, 0.5, size=200)
    >>> X = top[:, None] - np.linspace(0, 2, 16)            # 200 spectra
    >>> y = 0.9 - top**2                                      # "accuracy"
    >>> est = AeLLERegressor(latent_dim=2, hidden_dims=(16,), lr=1e-2,
    ...                      max_epochs=30, random_state=0).fit(X, y)
    >>> est.transform(X).shape
    (200, 2)
    >>> est.get_feature_names_out().tolist()
    ['aelle0', 'aelle1']
    >>> bool(est.score(X, y) > 0.5)
    True
    """

    def __init__(
        self,
        latent_dim=8,
        hidden_dims=(128, 64),
        alpha=1.0,
        activation="tanh",
        dropout=0.1,
        lr=1e-3,
        max_epochs=200,
        batch_size=64,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        device="auto",
        num_threads="auto",
        random_state=None,
        verbose=0,
    ):
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.alpha = alpha
        self.activation = activation
        self.dropout = dropout
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # validation

    def _check_params(self):
        """Check every hyper-parameter; return hidden_dims as a tuple."""

        def need_real(name, low, high, low_open, high_open):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            too_low = value <= low if low_open else value < low
            too_high = value >= high if high_open else value > high
            if too_low or too_high or math.isnan(value):
                interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
                raise ValueError(f"{name} must be in {interval}, got {value!r}")

        for name in ("latent_dim", "max_epochs", "batch_size", "n_iter_no_change"):
            check_int(getattr(self, name), name, minimum=1)
        check_num_threads(self.num_threads)
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_int(self.verbose, "verbose", minimum=0)
        need_real("alpha", 0.0, math.inf, False, True)
        need_real("dropout", 0.0, 1.0, False, True)
        need_real("lr", 0.0, math.inf, True, True)
        need_real("validation_fraction", 0.0, 1.0, True, True)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise TypeError(f"early_stopping must be a bool, got {self.early_stopping!r}")
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        hidden = self.hidden_dims
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden_dims must be a tuple of positive ints, got {hidden!r}")
        hidden = tuple(hidden)
        for width in hidden:
            if not _is_int(width) or width < 1:
                raise ValueError(f"hidden_dims must hold positive ints, got {self.hidden_dims!r}")
        return tuple(int(w) for w in hidden)

    # ------------------------------------------------------------------
    # training

    def fit(self, X, y):
        """Train the autoencoder and its prediction head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectra, one per row, all of the same length (see
            :class:`~sklyap.SpectrumResampler` for ragged ones). Finite values
            only. Not modified.
        y : array-like of shape (n_samples,)
            Target per spectrum (e.g. the network's accuracy). Not modified.

        Returns
        -------
        self : AeLLERegressor
            The fitted estimator.
        """
        hidden_dims = self._check_params()
        check_no_failed_rows(X)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        n_samples, n_features = X.shape
        if self.early_stopping:
            n_valid = _n_valid(n_samples, self.validation_fraction)
            if n_samples - n_valid < 2:
                raise ValueError(
                    f"too few samples for the validation split: n_samples={n_samples} "
                    f"with validation_fraction={self.validation_fraction} leaves "
                    f"{n_samples - n_valid} training sample(s), at least 2 are "
                    "needed; pass more samples, a smaller validation_fraction or "
                    "early_stopping=False"
                )
        device = str(check_device(self.device))
        rng = check_random_state(self.random_state)
        init_seed, shuffle_seed, split_seed = (
            int(s) for s in rng.randint(np.iinfo(np.int32).max, size=3)
        )

        x_mean, x_scale = _standardise_stats(X)
        y_mean, y_scale = _standardise_stats(y[:, None])
        Xs = ((X - x_mean) / x_scale).astype(np.float32)
        ys = ((y[:, None] - y_mean) / y_scale).astype(np.float32)
        target = np.hstack([Xs, ys])

        callbacks = []
        if self.early_stopping:
            train_idx, valid_idx = _split_indices(n_samples, self.validation_fraction, split_seed)
            train_split = predefined_split(Dataset(Xs[valid_idx], target[valid_idx]))
            callbacks.append(
                (
                    "early_stopping",
                    # skorch deep-copies the best state dict (by value) and
                    # loads it back at the end of training.
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=int(self.n_iter_no_change),
                        load_best=True,
                    ),
                )
            )
        else:
            train_idx = np.arange(n_samples)
            train_split = None
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))

        net = NeuralNet(
            module=_AeLLEModule,
            module__n_features=n_features,
            module__latent_dim=int(self.latent_dim),
            module__hidden_dims=hidden_dims,
            module__activation=self.activation,
            module__dropout=float(self.dropout),
            module__seed=init_seed,
            criterion=_AeLLELoss,
            criterion__n_features=n_features,
            criterion__alpha=float(self.alpha),
            optimizer=torch.optim.Adam,
            optimizer__foreach=True,
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            train_split=train_split,
            callbacks=callbacks,
            # Local generators: the mini-batch order, and the base seed that
            # every DataLoader iterator draws, come from these instead of the
            # global torch RNG.
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(shuffle_seed),
            iterator_valid__generator=torch.Generator().manual_seed(shuffle_seed + 1),
            device=device,
            verbose=int(self.verbose),
        )
        # The layers are small: "auto" always means one thread.
        with torch_threads(threads_for(self.num_threads, device, small=True)):
            net.fit(Xs[train_idx], target[train_idx])
        net.module_.eval()
        # The validation data was only needed for training; do not carry it
        # along in pickles of the fitted estimator.
        net.set_params(train_split=None)

        self.net_ = net
        self.device_ = device
        self.x_mean_ = x_mean
        self.x_scale_ = x_scale
        self.y_mean_ = float(y_mean[0])
        self.y_scale_ = float(y_scale[0])
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = np.asarray(history[:, "train_loss"], dtype=np.float64)
        if self.early_stopping:
            self.validation_loss_curve_ = np.asarray(history[:, "valid_loss"], dtype=np.float64)
            self.best_epoch_ = int(dict(net.callbacks_)["early_stopping"].best_epoch_)
        else:
            self.validation_loss_curve_ = None
            self.best_epoch_ = self.n_iter_
        return self

    # ------------------------------------------------------------------
    # inference

    def _inference_module(self):
        """A float64 copy of the trained module, in evaluation mode.

        Inference runs in double precision so that a row's output does not
        depend on which other rows share its batch (float32 matrix products
        differ in the last bits with the batch size). The fitted module itself
        is left untouched.
        """
        module = copy.deepcopy(self.net_.module_).to(dtype=torch.float64)
        return module.eval()

    def _run(self, fn, A):
        """Apply ``fn`` to the float64 rows ``A`` in batches; return float64."""
        out = []
        threads = threads_for(self.num_threads, self.device_, small=True)
        with torch.no_grad(), torch_threads(threads):
            for start in range(0, A.shape[0], _INFERENCE_BATCH):
                batch = torch.as_tensor(
                    A[start : start + _INFERENCE_BATCH], dtype=torch.float64
                ).to(self.device_)
                out.append(fn(batch).cpu().numpy())
        return np.concatenate(out, axis=0)

    def _standardised(self, X):
        check_is_fitted(self)
        check_no_failed_rows(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_

    def predict(self, X):
        """Predict the target (e.g. accuracy) of each spectrum.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Spectra, one per row.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions in the units of the ``y`` passed to :meth:`fit`,
            float64.
        """
        Xs = self._standardised(X)
        module = self._inference_module()
        ys = self._run(lambda x: module.head(module.encode(x)), Xs)
        return ys[:, 0] * self.y_scale_ + self.y_mean_

    def transform(self, X):
        """Embed each spectrum in the latent space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Spectra, one per row.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
            Latent codes, float64.
        """
        Xs = self._standardised(X)
        return self._run(self._inference_module().encode, Xs)

    def inverse_transform(self, Z):
        """Decode latent codes into spectra.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)
            Latent codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features_in_)
            Decoded spectra in the units of the ``X`` passed to :meth:`fit`,
            float64.
        """
        check_is_fitted(self)
        Z = check_array(Z, dtype=np.float64, input_name="Z")
        latent_dim = self.net_.module_.latent_dim
        if Z.shape[1] != latent_dim:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {type(self).__name__} has a "
                f"latent code of dimension {latent_dim}"
            )
        Xs = self._run(self._inference_module().decode, Z)
        return Xs * self.x_scale_ + self.x_mean_

    def get_feature_names_out(self, input_features=None):
        """Get the names of the latent dimensions: ``aelle0 ... aelle{latent_dim-1}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per latent dimension.
        """
        check_is_fitted(self)
        n = self.net_.module_.latent_dim
        return np.asarray([f"aelle{i}" for i in range(n)], dtype=object)

    # ------------------------------------------------------------------
    # persistence and tags

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch maps the net's tensors to the CPU when the pickle was made on
        # CUDA and CUDA is absent here (warning with a DeviceWarning); keep the
        # estimator's own record of the device in step with the net.
        device = self.__dict__.get("device_")
        if device is not None and torch.device(device).type == "cuda":
            if not torch.cuda.is_available():
                warnings.warn(
                    f"{type(self).__name__} was fitted on {device!r} but CUDA is "
                    "not available; it was loaded on the CPU",
                    UserWarning,
                    stacklevel=2,
                )
                self.device_ = "cpu"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
