"""What AeLLERegressor and AeLLEClassifier share: parameters, training, embedding.

At about 520 lines this module is just over the ~500 the package keeps to: a
sixth of it is the shared parameter documentation that fills both
estimators' docstrings (:func:`fill_doc`).
"""

import copy
import math
import warnings
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from tqdm.auto import tqdm

from .._validation import (
    Interval,
    Options,
    PositiveInts,
    RandomStates,
    check_device,
    check_spectra_not_models,
    threads_for,
    torch_threads,
    validate_params,
)
from ..features import check_no_failed_rows
from ._network import ACTIVATIONS, AeLLELoss, EnsembleAutoencoder, TensorBatches

# early_stopping="auto" holds out a validation split from this many samples on.
EARLY_STOPPING_MIN_SAMPLES = 1000
# batch_size="auto": the whole training set up to this many samples, else this many.
AUTO_BATCH_SIZE = 512

_INFERENCE_BATCH = 8192

SHARED_PARAMETERS = """\
    latent_dim : int, default=8
        Dimension of the latent code, at least 1.
    hidden_dims : tuple of int, default=(64, 32)
        Widths of the encoder's hidden layers; the decoder mirrors them. May be
        empty (a linear encoder and decoder).
    prediction_weight : float, default=10.0
        Weight of the prediction loss against the reconstruction loss, ``>= 0``
        (called ``alpha`` in the AeLLE paper). With 0 the head is not trained:
        the estimator is then a plain autoencoder whose predictions are
        meaningless.
    n_estimators : int, default=5
        Number of networks in the ensemble, each from its own initial weights
        (and bootstrap sample). They are trained together at about the cost
        of one, and their predictions are averaged.
    bootstrap : bool, default=False
        Whether each network trains on a bootstrap sample of the training
        data (sample weights drawn from a multinomial) instead of all of it.
    activation : {"tanh", "relu", "elu", "gelu", "sigmoid", "identity"}, \
default="tanh"
        Nonlinearity after each hidden layer. The latent code and the outputs
        are linear.
    dropout : float, default=0.1
        Dropout probability after each hidden layer during training, in
        ``[0, 1)``.
    weight_decay : float, default=1e-3
        Decoupled weight decay of the AdamW optimiser, ``>= 0``.
    lr : float, default=1e-2
        Learning rate of the AdamW optimiser, ``> 0``.
    max_epochs : int, default=1000
        Maximum number of passes over the training data.
    batch_size : int or "auto", default="auto"
        Mini-batch size. ``"auto"`` trains on the whole training set in one
        batch when it holds at most 512 samples, and in batches of 512
        otherwise.
    early_stopping : bool or "auto", default="auto"
        Whether to hold out ``validation_fraction`` of the samples, stop when
        their loss has not improved for ``n_iter_no_change`` epochs and
        restore the best weights. ``"auto"`` does so from 1,000 samples on;
        below that, every sample trains the networks for ``max_epochs``
        epochs.
    validation_fraction : float, default=0.1
        Fraction of the samples held out for early stopping, in ``(0, 1)``;
        ``ceil(validation_fraction * n_samples)`` samples are held out and at
        least 2 must remain for training.
    n_iter_no_change : int, default=20
        Epochs without improvement of the validation loss (by a relative
        1e-4) after which training stops.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when it is available, else the CPU; ``"cpu"``,
        ``"cuda"`` and ``"cuda:N"`` select a device explicitly.
    num_threads : "auto", int or None, default="auto"
        Torch CPU threads while fitting and predicting (restored afterwards).
        ``"auto"`` uses one: the layers are small, and one thread is as fast
        on a quiet machine and much faster on a busy one. ``None`` keeps
        torch's setting. Ignored on CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the dropout masks, the bootstrap samples,
        the mini-batch order and the validation split, through local
        generators (the global torch RNG is neither read nor reseeded). The
        same ``random_state`` on the same data and device gives identical
        results.
    verbose : int, default=0
        ``0`` is silent; ``1`` shows a progress bar over epochs; ``2`` prints
        one line per epoch (training and validation loss, duration)."""

SHARED_ATTRIBUTES = """\
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` holds the whole ensemble as
        batched tensors (a leading member axis on every weight) and
        ``net_.history`` the per-epoch record.
    device_ : str
        The device the net lives on.
    n_features_in_ : int
        Number of features (spectrum length) seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.
    x_mean_, x_scale_ : ndarray of shape (`n_features_in_`,)
        Column means and standard deviations used to standardise ``X``
        (a constant column has scale 1).
    early_stopping_ : bool
        Whether a validation split was held out (``early_stopping`` resolved).
    batch_size_ : int
        The mini-batch size used (``batch_size`` resolved).
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        The (1-based) epoch whose weights were kept: the best validation epoch
        with early stopping, else the last one.
    loss_curve_ : ndarray of shape (`n_iter_`,)
        Training loss per epoch, the mean over the networks of the ensemble
        (standardised units).
    validation_loss_curve_ : ndarray of shape (`n_iter_`,) or None
        Validation loss per epoch (mean over the networks); None without
        early stopping."""


def fill_doc(**parts):
    """Put the shared parameter and attribute text into a class docstring."""

    def decorate(cls):
        doc = cls.__doc__
        for name, text in parts.items():
            # The placeholder is indented like the section it sits in; the text
            # brings its own indentation.
            doc = doc.replace("    {" + name + "}", text)
        cls.__doc__ = doc
        return cls

    return decorate


def constant_columns(A):
    """Columns whose spread is 0 to rounding (at most 10 eps of their magnitude)."""
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(A.mean(axis=0)), 1.0)
    return A.std(axis=0) <= tiny


def standardise_stats(A):
    """Column means and standard deviations; a constant column gets scale 1."""
    return A.mean(axis=0), np.where(constant_columns(A), 1.0, A.std(axis=0))


def n_validation(n_samples, validation_fraction):
    """ceil(fraction * n), ignoring rounding noise (0.1 * 120 is 12, not 13)."""
    return math.ceil(round(validation_fraction * n_samples, 9))


def split_indices(n_samples, validation_fraction, seed):
    """Random (train, validation) index arrays; ceil(fraction * n) for validation."""
    n_valid = n_validation(n_samples, validation_fraction)
    perm = np.random.RandomState(seed).permutation(n_samples)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def bootstrap_weights(n_samples, n_members, seed):
    """Per member, how often each sample is drawn in a bootstrap sample: (n_samples, n_members)."""
    rng = np.random.RandomState(seed)
    counts = rng.multinomial(n_samples, np.full(n_samples, 1.0 / n_samples), size=n_members)
    return counts.T.astype(np.float32)


class _EpochBar(Callback):
    """A tqdm bar over epochs, with the training loss."""

    def __init__(self, total, desc):
        self.total = total
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(total=self.total, desc=self.desc, unit="epoch", leave=False)

    def on_epoch_end(self, net, **kwargs):
        self.bar_.update(1)
        self.bar_.set_postfix(loss=f"{net.history[-1, 'train_loss']:.4g}", refresh=False)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


class BaseAeLLE(TransformerMixin, BaseEstimator):
    """Shared machinery; subclasses set the head (regression or classification)."""

    _parameter_constraints: ClassVar[dict] = {
        "latent_dim": [Interval(int, 1, None)],
        "hidden_dims": [PositiveInts()],
        "prediction_weight": [Interval(float, 0, None)],
        "n_estimators": [Interval(int, 1, None)],
        "bootstrap": [Options(True, False)],
        "activation": [Options(*ACTIVATIONS)],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "weight_decay": [Interval(float, 0, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "max_epochs": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None), Options("auto")],
        "early_stopping": [Options("auto", True, False)],
        "validation_fraction": [Interval(float, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(int, 1, None)],
        "device": "no_validation",  # check_device, in fit
        "num_threads": [Interval(int, 1, None), Options("auto", None)],
        "random_state": [RandomStates()],
        "verbose": [Interval(int, 0, None), Options(True, False)],
    }

    _head = None  # "regression" or "classification"

    def __init__(
        self,
        latent_dim=8,
        hidden_dims=(64, 32),
        prediction_weight=10.0,
        n_estimators=5,
        bootstrap=False,
        activation="tanh",
        dropout=0.1,
        weight_decay=1e-3,
        lr=1e-2,
        max_epochs=1000,
        batch_size="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=20,
        device="auto",
        num_threads="auto",
        random_state=None,
        verbose=0,
    ):
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.prediction_weight = prediction_weight
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.activation = activation
        self.dropout = dropout
        self.weight_decay = weight_decay
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

    # -- training ----------------------------------------------------------------------

    def _validate_params(self):
        validate_params(self.get_params(deep=False), self._parameter_constraints)
        return check_device(self.device)

    def _resolve_training(self, n_samples):
        """(early_stopping, train size) for ``n_samples``; errors before any training."""
        early = self.early_stopping
        early = n_samples >= EARLY_STOPPING_MIN_SAMPLES if early == "auto" else bool(early)
        n_train = n_samples
        if early:
            n_train = n_samples - n_validation(n_samples, self.validation_fraction)
            if n_train < 2:
                raise ValueError(
                    f"too few samples for the validation split: n_samples={n_samples} "
                    f"with validation_fraction={self.validation_fraction} leaves "
                    f"{n_train} training sample(s), at least 2 are needed; pass more "
                    "samples, a smaller validation_fraction or early_stopping=False"
                )
        return early, n_train

    def _fit_ensemble(self, X, target, n_outputs, device):
        """Standardise ``X`` and train the ensemble against ``target`` (one column per sample).

        ``X`` has passed ``validate_data``; ``target`` is the standardised value
        (regression) or the class index (classification), float.
        """
        n_samples, n_features = X.shape
        early, n_train = self._resolve_training(n_samples)
        auto = self.batch_size == "auto"
        batch_size = min(n_train, AUTO_BATCH_SIZE) if auto else int(self.batch_size)
        M = int(self.n_estimators)
        rng = check_random_state(self.random_state)
        init_seed, shuffle_seed, split_seed, bootstrap_seed = (
            int(s) for s in rng.randint(np.iinfo(np.int32).max, size=4)
        )

        x_mean, x_scale = standardise_stats(X)
        Xs = ((X - x_mean) / x_scale).astype(np.float32)
        columns = [Xs, target.astype(np.float32)[:, None]]
        if early:
            train_idx, valid_idx = split_indices(n_samples, self.validation_fraction, split_seed)
        else:
            train_idx, valid_idx = np.arange(n_samples), None
        weights = np.ones((n_samples, M), dtype=np.float32)
        if self.bootstrap:
            weights[train_idx] = bootstrap_weights(len(train_idx), M, bootstrap_seed)
        full = np.hstack([*columns, weights])
        X_t, full_t = torch.from_numpy(Xs), torch.from_numpy(full)

        callbacks = []
        train_split = None
        if early:
            train_split = predefined_split(Dataset(X_t[valid_idx], full_t[valid_idx]))
            # skorch copies the best state dict by value and loads it back at
            # the end of training.
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=int(self.n_iter_no_change),
                        load_best=True,
                    ),
                )
            )
        if self.verbose == 1:
            callbacks.append(("epoch_bar", _EpochBar(int(self.max_epochs), type(self).__name__)))
        elif self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))

        net = NeuralNet(
            module=EnsembleAutoencoder,
            module__n_features=n_features,
            module__latent_dim=int(self.latent_dim),
            module__hidden_dims=tuple(int(w) for w in self.hidden_dims),
            module__n_outputs=n_outputs,
            module__activation=self.activation,
            module__dropout=float(self.dropout),
            module__n_members=M,
            module__seed=init_seed,
            criterion=AeLLELoss,
            criterion__n_features=n_features,
            criterion__prediction_weight=float(self.prediction_weight),
            criterion__head=self._head,
            criterion__n_members=M,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=float(self.weight_decay),
            optimizer__foreach=True,
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train=TensorBatches,
            iterator_valid=TensorBatches,
            iterator_train__shuffle=True,
            # A local generator: the mini-batch order does not touch the
            # global torch RNG.
            iterator_train__generator=torch.Generator().manual_seed(shuffle_seed),
            device=str(device),
            verbose=int(self.verbose >= 2),
        )
        with torch_threads(threads_for(self.num_threads, device, small=True)):
            net.fit(X_t[train_idx], full_t[train_idx])
        net.module_.eval()
        # The validation data was only needed for training; do not carry it
        # along in pickles of the fitted estimator.
        net.set_params(train_split=None)

        self.net_ = net
        self.device_ = str(device)
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        self.early_stopping_ = bool(early)
        self.batch_size_ = batch_size
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = np.asarray(history[:, "train_loss"], dtype=np.float64) / M
        if early:
            self.validation_loss_curve_ = np.asarray(history[:, "valid_loss"], dtype=np.float64) / M
            self.best_epoch_ = int(dict(net.callbacks_)["early_stopping"].best_epoch_)
        else:
            self.validation_loss_curve_ = None
            self.best_epoch_ = self.n_iter_
        return self

    # -- inference ---------------------------------------------------------------------

    def _inference_module(self):
        """A float64 copy of the trained ensemble, in evaluation mode.

        Inference runs in double precision so that a row's output does not
        depend on which other rows share its batch (float32 matrix products
        differ in the last bits with the batch size). The fitted module itself
        is left untouched.
        """
        return copy.deepcopy(self.net_.module_).to(dtype=torch.float64).eval()

    def _run(self, fn, A):
        """Apply ``fn`` to the float64 rows of ``A`` in batches; concatenate along axis -2."""
        out = []
        threads = threads_for(self.num_threads, self.device_, small=True)
        with torch.no_grad(), torch_threads(threads):
            for start in range(0, A.shape[0], _INFERENCE_BATCH):
                # A copy: A may be a read-only view (of a DataFrame, say).
                batch = torch.tensor(A[start : start + _INFERENCE_BATCH], dtype=torch.float64)
                out.append(fn(batch.to(self.device_)).cpu().numpy())
        return np.concatenate(out, axis=-2)

    def _standardised(self, X):
        check_is_fitted(self)
        check_no_failed_rows(X)
        check_spectra_not_models(X, self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_

    def _head_outputs(self, X):
        """The head's output of every member, shape (n_estimators, n_samples, n_outputs)."""
        Xs = self._standardised(X)
        module = self._inference_module()
        return self._run(lambda x: module.head(module.encode(x)), Xs)

    def transform(self, X):
        """Embed each spectrum in the latent space of the ensemble's first network.

        The networks of an ensemble learn unrelated coordinates, so their codes
        are not averaged: the embedding is that of the first network (the
        one a single-network estimator with the same ``random_state`` trains).

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_features_in_`)
            Spectra, one per row.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
            Latent codes, float64.
        """
        Xs = self._standardised(X)
        module = self._inference_module()
        return self._run(lambda x: module.encode(x)[0], Xs)

    def inverse_transform(self, Z):
        """Decode latent codes of the first network (see :meth:`transform`) into spectra.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)
            Latent codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, `n_features_in_`)
            Decoded spectra in the units of the ``X`` passed to ``fit``,
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
        module = self._inference_module()
        M = module.n_members
        Xs = self._run(lambda z: module.decode(z.expand(M, *z.shape))[0], Z)
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

    # -- persistence and tags ----------------------------------------------------------

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch maps the net's tensors to the CPU when the pickle was made on
        # CUDA and CUDA is absent here (with a DeviceWarning); keep the
        # estimator's own record of the device in step with the net.
        device = self.__dict__.get("device_")
        on_missing_cuda = device is not None and torch.device(device).type == "cuda"
        if on_missing_cuda and not torch.cuda.is_available():
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
