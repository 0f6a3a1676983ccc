"""The torch side of AeLLE: an ensemble of autoencoders with heads, its loss, its batches.

Every member of the ensemble is an independent network; the members are
stored as batched tensors (a leading member axis on every weight) so that one
batched matrix product advances all of them. Their losses are summed: a
member's gradient depends on its own loss only, and Adam(W) updates every
parameter element-wise, so training the ensemble jointly is training each
member on its own, at the cost of about one.
"""

import itertools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validation import Options, validate_params

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}

# Gains of the uniform (Glorot) initialisation of a layer followed by each
# activation, as torch.nn.init.calculate_gain gives them.
_GAINS = {
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "elu": math.sqrt(2.0),
    "gelu": math.sqrt(2.0),
    "sigmoid": 1.0,
    "identity": 1.0,
}


def member_seed(seed, member):
    """The seed of one member's initial weights; independent of the ensemble's size."""
    return int(np.random.SeedSequence(seed, spawn_key=(member,)).generate_state(1)[0])


class _BatchedLinear(nn.Module):
    """``n_members`` linear layers ``a -> b``: weight (M, a, b), bias (M, 1, b)."""

    def __init__(self, n_members, a, b):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, a, b))
        self.bias = nn.Parameter(torch.zeros(n_members, 1, b))

    def forward(self, x):
        # x: (M, n, a) -> (M, n, b), one batched GEMM for all members.
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleAutoencoder(nn.Module):
    """``n_members`` autoencoders, each with a linear head on its latent code.

    Member ``m``: encoder ``n_features -> hidden_dims -> latent_dim``, decoder
    mirrored back to ``n_features``, head ``latent_dim -> n_outputs``. The
    nonlinearity follows every hidden layer (and dropout during training);
    the latent code and the outputs are linear. ``forward`` returns, per
    member, the reconstruction and the head's output side by side, shape
    ``(n_members, n, n_features + n_outputs)``.

    All randomness comes from local generators: member ``m``'s initial
    weights from :func:`member_seed` ``(seed, m)`` (so that a member does not
    depend on how many others there are), dropout masks from ``seed``. The
    global torch RNG is never drawn from.
    """

    def __init__(
        self, n_features, latent_dim, hidden_dims, n_outputs, activation, dropout, n_members, seed
    ):
        super().__init__()
        self.n_features = int(n_features)
        self.latent_dim = int(latent_dim)
        self.n_outputs = int(n_outputs)
        self.n_members = int(n_members)
        self.activation = activation
        self.dropout = float(dropout)
        self.seed = int(seed)
        self._dropout_generator = None

        sizes = [self.n_features, *hidden_dims, self.latent_dim]
        back = sizes[::-1]
        M = self.n_members
        self.encoder = nn.ModuleList(_BatchedLinear(M, a, b) for a, b in itertools.pairwise(sizes))
        self.decoder = nn.ModuleList(_BatchedLinear(M, a, b) for a, b in itertools.pairwise(back))
        self.head = _BatchedLinear(M, self.latent_dim, self.n_outputs)

        gain = _GAINS[activation]
        with torch.no_grad():
            for m in range(M):
                generator = torch.Generator().manual_seed(member_seed(self.seed, m))
                for layers in (self.encoder, self.decoder):
                    for i, layer in enumerate(layers):
                        # The layers followed by the nonlinearity get its
                        # gain, the last (linear) layer of a stack gain 1.
                        g = gain if i < len(layers) - 1 else 1.0
                        self._glorot(layer.weight[m], g, generator)
                self._glorot(self.head.weight[m], 1.0, generator)

    @staticmethod
    def _glorot(weight, gain, generator):
        fan_in, fan_out = weight.shape
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        weight.uniform_(-bound, bound, generator=generator)

    def _drop(self, x):
        if not self.training or self.dropout == 0.0:
            return x
        keep = 1.0 - self.dropout
        generator = self._dropout_generator
        if x.device.type == "cpu":
            # numpy's PCG64 draws the masks several times faster than torch's
            # CPU generator, whose cost is a fifth of a small network's epoch.
            if not isinstance(generator, np.random.Generator):
                generator = self._dropout_generator = np.random.default_rng(self.seed)
            mask = generator.random(x.shape, dtype=np.float32) < keep
            scale = torch.from_numpy(mask.astype(np.float32) * np.float32(1.0 / keep))
            return x * scale.to(x.dtype)
        if not isinstance(generator, torch.Generator) or generator.device != x.device:
            generator = torch.Generator(device=x.device).manual_seed(self.seed)
            self._dropout_generator = generator
        return x * torch.empty_like(x).bernoulli_(keep, generator=generator) / keep

    def _stack(self, layers, x):
        act = ACTIVATIONS[self.activation]
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            x = layer(x)
            if i < last:
                x = self._drop(act(x))
        return x

    def encode(self, x):
        """Latent codes of every member: (n, n_features) -> (n_members, n, latent_dim)."""
        return self._stack(self.encoder, x.expand(self.n_members, *x.shape))

    def decode(self, z):
        """Reconstructions: (n_members, n, latent_dim) -> (n_members, n, n_features)."""
        return self._stack(self.decoder, z)

    def forward(self, x):
        z = self.encode(x)
        return torch.cat([self.decode(z), self.head(z)], dim=-1)

    def __getstate__(self):
        # The dropout generator may be a device object (a CUDA generator cannot
        # be unpickled without CUDA) and is only needed during training; it is
        # recreated on demand.
        state = self.__dict__.copy()
        state["_dropout_generator"] = None
        return state


class AeLLELoss(nn.Module):
    """Per member: mean |reconstruction error| + ``prediction_weight`` * prediction loss.

    The prediction loss is the squared error (``head="regression"``) or the
    cross-entropy of the logits (``head="classification"``). The target
    ``y_true`` holds, column-wise, the standardised spectrum (``n_features``
    columns), the target (standardised value or class index), and one sample
    weight per member (bootstrap counts; ones without bootstrap). A member's
    loss is its weighted mean over samples; the ensemble's loss is the sum
    over members, so that each member's gradient is that of its own loss.
    """

    def __init__(self, n_features, prediction_weight, head, n_members):
        super().__init__()
        validate_params({"head": head}, {"head": [Options("regression", "classification")]})
        self.n_features = n_features
        self.prediction_weight = prediction_weight
        self.head = head
        self.n_members = n_members

    def per_member(self, y_pred, y_true):
        """The loss of each member, shape (n_members,)."""
        d, M = self.n_features, self.n_members
        x_true, target, weights = y_true[:, :d], y_true[:, d], y_true[:, d + 1 :].T
        reconstruction = (y_pred[..., :d] - x_true).abs().mean(dim=-1)  # (M, n)
        out = y_pred[..., d:]
        if self.head == "regression":
            prediction = (out[..., 0] - target).square()
        else:
            n_classes = out.shape[-1]
            prediction = F.cross_entropy(
                out.reshape(-1, n_classes), target.long().repeat(M), reduction="none"
            ).reshape(M, -1)
        per_sample = reconstruction + self.prediction_weight * prediction
        return (weights * per_sample).sum(dim=1) / weights.sum(dim=1)

    def forward(self, y_pred, y_true):
        return self.per_member(y_pred, y_true).sum()


class TensorBatches:
    """Mini-batches of a dataset of tensors, by slicing (skorch's ``iterator_train``).

    A stand-in for ``torch.utils.data.DataLoader`` that indexes whole tensors
    at once instead of collating samples one by one. ``shuffle`` draws a
    permutation per epoch from ``generator``; a batch that covers the whole
    dataset is the dataset itself.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.X, self.y = dataset.X, dataset.y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        if self.batch_size >= n:
            yield self.X, self.y
            return
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.X[idx], self.y[idx]
