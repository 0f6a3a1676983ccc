"""Statistics of a network's weights, per weight matrix: a baseline and a feature.

Unterthiner et al. (2020, "Predicting Neural Network Accuracy from Weights")
predict the accuracy of trained networks from the mean, variance and
quantiles of each layer's weights and biases; on zoos of CNNs, gradient
boosting on these features ranks networks with Kendall tau above 0.9. They
cost nothing to compute, so they are the baseline a spectrum-based predictor
has to beat, and a feature to combine with spectra.
"""

from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import Options, check_model_list, validate_params
from .dynamics import recurrent_module, torch_module_of

__all__ = ["WeightStatistics"]

STATISTICS = ("mean", "std", "min", "q25", "median", "q75", "max")


def _statistics(values):
    """The :data:`STATISTICS` of a flat float64 array."""
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return np.array([values.mean(), values.std(), *q])


class WeightStatistics(TransformerMixin, BaseEstimator):
    """Map trained networks to statistics of each of their weight matrices.

    For every parameter tensor of a model (a weight matrix or a bias, all the
    gates of a cell together), the mean, standard deviation, minimum, 25%
    quantile, median, 75% quantile and maximum of its entries: the features of
    Unterthiner et al. (2020). They do not depend on the shapes, so networks
    of different sizes and cell kinds get comparable rows.

    ``X`` is a list of models, as for :class:`LyapunovSpectrumTransformer`:
    ``nn.Module`` objects (for example ``nn.LSTM``, or a classifier holding
    one) or fitted skorch nets. Models are read, never modified.

    Parameters
    ----------
    parameters : {"all", "recurrent"}, default="all"
        Which parameter tensors to describe: every parameter of the model
        (``named_parameters()``: embedding, recurrent core, readout), or only
        those of its recurrent module.
    rnn : str, default=None
        Attribute path of the recurrent module when ``parameters="recurrent"``
        and a model contains several.

    Attributes
    ----------
    parameter_names_ : list of str
        The parameter tensors described, in order of first appearance among
        the models passed to :meth:`fit` (the union over them). A model that
        lacks one (a network with fewer layers, or without biases) gets NaN in
        its columns; gradient boosting (``HistGradientBoostingRegressor``)
        handles such columns as they are.
    n_features_out_ : int
        ``7 * len(parameter_names_)``.

    See Also
    --------
    LyapunovSpectrumTransformer : The networks' Lyapunov spectra.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklyap import WeightStatistics
    >>> _ = torch.manual_seed(0)
    >>> models = [nn.GRU(3, 8), nn.LSTM(3, 16)]
    >>> ws = WeightStatistics().fit(models)
    >>> ws.parameter_names_
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    >>> ws.transform(models).shape
    (2, 28)
    >>> ws.get_feature_names_out()[:3].tolist()
    ['weight_ih_l0__mean', 'weight_ih_l0__std', 'weight_ih_l0__min']
    """

    _parameter_constraints: ClassVar[dict] = {
        "parameters": [Options("all", "recurrent")],
        "rnn": "no_validation",  # checked with each model, by recurrent_module
    }

    def __init__(self, parameters="all", rnn=None):
        self.parameters = parameters
        self.rnn = rnn

    def _named_parameters(self, model, index):
        """{name: float64 array} of one model's parameters, checked."""
        try:
            module = torch_module_of(model)
            if self.parameters == "recurrent":
                _, module = recurrent_module(module, rnn=self.rnn)
            elif not isinstance(module, torch.nn.Module):
                raise TypeError(
                    f"expected an nn.Module or a fitted skorch net, got {type(model).__name__}"
                )
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"model {index}: {exc}") from None
        named = {}
        for name, p in module.named_parameters():
            values = p.detach().to(device="cpu", dtype=torch.float64).reshape(-1).numpy()
            if values.size == 0:
                continue
            if not np.isfinite(values).all():
                raise ValueError(f"model {index}: parameter {name!r} holds NaN or infinite values")
            named[name] = values
        if not named:
            raise ValueError(f"model {index}: {type(module).__name__} has no parameters")
        return named

    def fit(self, X, y=None):
        """Record the parameter tensors of the models (the union over them).

        Parameters
        ----------
        X : list of models
            ``nn.Module`` objects or fitted skorch nets.
        y : None
            Ignored.

        Returns
        -------
        self : WeightStatistics
        """
        validate_params(self.get_params(deep=False), self._parameter_constraints)
        names = {}
        for index, model in enumerate(check_model_list(X, "nn.Module or fitted skorch nets")):
            names.update(dict.fromkeys(self._named_parameters(model, index)))
        self.parameter_names_ = list(names)
        self.n_features_out_ = len(STATISTICS) * len(self.parameter_names_)
        return self

    def transform(self, X):
        """Statistics of every recorded parameter tensor of each model.

        Parameters
        ----------
        X : list of models

        Returns
        -------
        features : ndarray of shape (n_models, `n_features_out_`)
            Float64; NaN in the columns of a parameter the model lacks.
        """
        check_is_fitted(self, "parameter_names_")
        models = check_model_list(X, "nn.Module or fitted skorch nets")
        out = np.full((len(models), self.n_features_out_), np.nan)
        column = {name: i * len(STATISTICS) for i, name in enumerate(self.parameter_names_)}
        for index, model in enumerate(models):
            for name, values in self._named_parameters(model, index).items():
                if name in column:
                    out[index, column[name] : column[name] + len(STATISTICS)] = _statistics(values)
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``<parameter>__<statistic>``.

        Parameters
        ----------
        input_features : None
            Ignored; the inputs are models, not named columns.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "parameter_names_")
        return np.asarray(
            [f"{name}__{stat}" for name in self.parameter_names_ for stat in STATISTICS],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a list of models, not an array (as for the text vectorizers).
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
