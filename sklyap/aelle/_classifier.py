"""AeLLEClassifier: the AeLLE embedding with a classification head."""

import numpy as np
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from .._validation import check_spectra_not_models
from ..features import check_no_failed_rows
from ._base import SHARED_ATTRIBUTES, SHARED_PARAMETERS, BaseAeLLE, fill_doc

__all__ = ["AeLLEClassifier"]


@fill_doc(parameters=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class AeLLEClassifier(ClassifierMixin, BaseAeLLE):
    """Autoencoder Lyapunov latent embedding (AeLLE) that classifies networks.

    The AeLLE autoencoder of :class:`AeLLERegressor` with a logistic
    (softmax) head on the latent code, trained jointly on

        ``loss = mean |X_hat - X| + prediction_weight * cross-entropy``

    for questions such as "will this network reach accuracy >= t?"
    (``y = accuracy >= t``): the separation of good and bad networks. The
    ensemble's class probabilities are the mean of its networks';
    :meth:`transform` returns the latent code of the first network.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    {attributes}

    See Also
    --------
    AeLLERegressor : The same embedding with a regression head.

    Examples
    --------
    >>> from sklyap import AeLLEClassifier
    >>> from sklyap.datasets import make_spectra
    >>> X, accuracy = make_spectra(n_samples=200, n_exponents=16, random_state=0)
    >>> good = accuracy >= 0.5
    >>> clf = AeLLEClassifier(max_epochs=200, random_state=0).fit(X, good)  # a quick fit
    >>> clf.classes_
    array([False,  True])
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> bool(clf.score(X, good) > 0.9)
    True
    """

    _head = "classification"

    def fit(self, X, y):
        """Train the ensemble of autoencoders and their classification heads.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectra, one per row, all of the same length. Finite values only.
            Not modified.
        y : array-like of shape (n_samples,)
            Class labels, at least two classes. Not modified.

        Returns
        -------
        self : AeLLEClassifier
            The fitted estimator.
        """
        device = self._validate_params()
        check_spectra_not_models(X, self)
        check_no_failed_rows(X)
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; "
                f"y holds 1 class: {encoder.classes_.tolist()[0]!r}"
            )
        self.classes_ = encoder.classes_
        self._fit_ensemble(X, encoder.transform(y).astype(np.float64), len(self.classes_), device)
        return self

    def predict_proba(self, X):
        """Class probabilities: the mean of the ensemble's networks.

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_features_in_`)
            Spectra, one per row.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in the order of ``classes_``,
            float64; rows sum to 1.
        """
        return softmax(self._head_outputs(X), axis=-1).mean(axis=0)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_features_in_`)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each spectrum.

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_features_in_`)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # checks that it is fitted, before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]
