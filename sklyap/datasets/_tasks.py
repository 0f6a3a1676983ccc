"""Real sequence tasks that ship with our dependencies: no downloads at run time."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from .._validation import Options, check_int, validate_params

__all__ = ["digit_streams", "load_char_text", "load_sequential_digits"]

# Fixed seed of the splits: every call, every machine, the same networks see the
# same training, validation and test sequences.
_SPLIT_SEED = 0


def load_sequential_digits(mode="row"):
    """Handwritten digits read as sequences, with a fixed train/validation/test split.

    scikit-learn's 8x8 digits (1,797 images, 10 classes), with pixel values
    scaled to ``[0, 1]``, read either row by row (8 steps of 8 features) or
    pixel by pixel (64 steps of 1 feature, the row-major scan). The split is
    stratified and fixed: 60% train (1,077), 20% validation (360), 20% test (360).

    Parameters
    ----------
    mode : {"row", "pixel"}, default="row"
        How an image becomes a sequence.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train``, ``X_val``, ``X_test``: float32 arrays of shape
        ``(n, n_steps, input_size)``; ``y_train``, ``y_val``, ``y_test``: int64
        labels; ``input_size``, ``n_steps``, ``n_classes`` (10), ``mode``,
        ``task`` ("digits") and ``DESCR``.

    Examples
    --------
    >>> from sklyap.datasets import load_sequential_digits
    >>> data = load_sequential_digits()
    >>> data.X_train.shape, data.X_val.shape, data.X_test.shape
    ((1077, 8, 8), (360, 8, 8), (360, 8, 8))
    >>> load_sequential_digits("pixel").X_test.shape
    (360, 64, 1)
    """
    validate_params({"mode": mode}, {"mode": [Options("row", "pixel")]})
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    X = images if mode == "row" else images.reshape(len(images), 64, 1)
    y = digits.target.astype(np.int64)
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, test_size=720, stratify=y, random_state=_SPLIT_SEED
    )
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, test_size=360, stratify=y_rest, random_state=_SPLIT_SEED
    )
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        X_test=X_test,
        y_test=y_test,
        input_size=X.shape[2],
        n_steps=X.shape[1],
        n_classes=10,
        mode=mode,
        task="digits",
        DESCR=(
            "scikit-learn's 8x8 handwritten digits read as sequences "
            f"({'row by row: 8 steps of 8 features' if mode == 'row' else 'pixel by pixel: 64 steps of 1 feature'}), "
            "pixel values scaled to [0, 1]; fixed stratified 60/20/20 split."
        ),
    )


def digit_streams(X, n_trajectories, n_images, random_state):
    """Driving inputs from a digits split: random images read one after another.

    Sequential digits are 8 steps long, too short to measure a spectrum; a
    stream of images read back to back drives a network with inputs of the
    task for as long as needed.

    Parameters
    ----------
    X : ndarray of shape (n_images_available, n_steps, input_size)
    n_trajectories, n_images : int
    random_state : int or RandomState

    Returns
    -------
    ndarray of shape (n_trajectories, n_images * n_steps, input_size)
        float64.

    Examples
    --------
    >>> from sklyap.datasets import digit_streams, load_sequential_digits
    >>> data = load_sequential_digits()
    >>> digit_streams(data.X_val, n_trajectories=4, n_images=30, random_state=0).shape
    (4, 240, 8)
    """
    rng = check_random_state(random_state)
    picks = rng.choice(len(X), size=(n_trajectories, n_images), replace=True)
    return X[picks].reshape(n_trajectories, n_images * X.shape[1], X.shape[2]).astype(np.float64)


def _python_documentation_text():
    """The text of the Python documentation topics that ship with the standard library."""
    from pydoc_data import topics

    return "\n\n".join(topics.topics[key] for key in sorted(topics.topics))


def load_char_text(seq_len=50, *, encoding="ids", min_count=20):
    """Next-character prediction on the Python documentation shipped with Python.

    The text is the standard library's ``pydoc_data.topics`` (about 465,000
    characters of English prose and code examples, the help pages of Python's
    statements and types). Characters seen fewer than ``min_count`` times map to
    one unknown symbol (index 0). The text is split into contiguous blocks,
    80% train, 10% validation, 10% test, each cut into non-overlapping windows
    of ``seq_len + 1`` characters: the input is the first ``seq_len``
    characters, the target at each step is the next character.

    Parameters
    ----------
    seq_len : int, default=50
        Length of the input sequences.
    encoding : {"ids", "onehot"}, default="ids"
        ``"ids"`` gives int64 character indices of shape ``(n, seq_len)``
        (feed them to an embedding); ``"onehot"`` gives float32 one-hot
        vectors of shape ``(n, seq_len, vocabulary size)``.
    min_count : int, default=20
        Characters rarer than this are replaced by the unknown symbol.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train``, ``X_val``, ``X_test`` (inputs), ``y_train``, ``y_val``,
        ``y_test`` (int64 next-character indices, shape ``(n, seq_len)``),
        ``vocabulary`` (the characters; index 0 is the unknown symbol),
        ``input_size`` and ``n_classes`` (both the vocabulary size: the width of
        the one-hot inputs, or the number of symbols an embedding reads), ``n_steps``, ``encoding``, ``task``
        ("char_text") and ``DESCR``.

    Examples
    --------
    >>> from sklyap.datasets import load_char_text
    >>> data = load_char_text(seq_len=50)
    >>> data.X_train.shape[1], data.n_classes == len(data.vocabulary)
    (50, True)
    >>> bool(data.y_train[0, 0] == data.X_train[0, 1])
    True
    """
    seq_len = check_int(seq_len, "seq_len", minimum=1)
    min_count = check_int(min_count, "min_count", minimum=1)
    validate_params({"encoding": encoding}, {"encoding": [Options("ids", "onehot")]})
    text = _python_documentation_text()
    chars, counts = np.unique(
        np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_counts=True
    )
    kept = chars[counts >= min_count]
    vocabulary = ["\N{REPLACEMENT CHARACTER}"] + [chr(c) for c in kept]
    lookup = np.zeros(int(chars.max()) + 1, dtype=np.int64)
    lookup[kept] = np.arange(1, len(kept) + 1)
    ids = lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    n = len(ids)
    blocks = {
        "train": ids[: int(0.8 * n)],
        "val": ids[int(0.8 * n) : int(0.9 * n)],
        "test": ids[int(0.9 * n) :],
    }
    data = Bunch(
        vocabulary=vocabulary,
        n_classes=len(vocabulary),
        n_steps=seq_len,
        encoding=encoding,
        task="char_text",
        input_size=len(vocabulary),
    )
    eye = np.eye(len(vocabulary), dtype=np.float32)
    for name, block in blocks.items():
        n_windows = (len(block) - 1) // (seq_len + 1)
        windows = block[: n_windows * (seq_len + 1)].reshape(n_windows, seq_len + 1)
        inputs = windows[:, :-1]
        data[f"X_{name}"] = eye[inputs] if encoding == "onehot" else inputs
        data[f"y_{name}"] = windows[:, 1:]
    data.DESCR = (
        f"Next-character prediction on Python's documentation topics (pydoc_data): "
        f"{n} characters, vocabulary of {len(vocabulary)} (index 0: rarer than "
        f"{min_count}), contiguous 80/10/10 split into windows of {seq_len} steps."
    )
    return data
