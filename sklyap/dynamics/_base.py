"""The contract every dynamical system in sklyap fulfils."""

import torch


class Dynamics:
    """A driven discrete-time system ``s_{t+1} = F(s_t, x_t)`` and its tangent map.

    Subclasses describe one system (an ``nn.LSTM``, a custom cell, a classic
    map) well enough for the Lyapunov algorithm: the size of the state, how a
    batch of states advances one step, and how a batch of tangent vectors is
    carried along by the Jacobian ``J_t = dF/ds (s_t, x_t)``.

    Attributes
    ----------
    state_size : int
        Number of state variables ``n``.
    input_size : int or None
        Number of input features per step; ``None`` when the system does not
        know (it then accepts whatever its step function accepts).
    state_layout : tuple of (str, slice)
        Names of the blocks of the state vector and where they lie, e.g.
        ``(("h0", slice(0, 32)), ("c0", slice(32, 64)))`` for a one-layer
        LSTM of hidden size 32.
    signature : hashable or None
        Systems of one signature can be advanced together as one batched
        system (:meth:`stack`); ``None`` for a system that runs alone.
    nonfinite_parameters : tuple of str
        Parameters holding NaN or inf, for systems built to report rather than
        refuse them.
    nbytes : int
        Bytes of the tensors the system holds of its own (copies of weights);
        0 for a system that holds only what its caller holds.
    batch_first : bool or None
        How the model lays out a batch of sequences: ``True`` for
        ``(B, T, input_size)``, ``False`` for ``(T, B, input_size)`` (PyTorch's
        default for ``nn.RNN``/``nn.GRU``/``nn.LSTM``), ``None`` for systems
        that have no convention of their own (cells, step functions).

    Notes
    -----
    **Shapes and orientation.** ``state`` has shape ``(B, n)`` (``B``
    trajectories, ``n = state_size``), ``x`` has shape ``(B, input_size)``. A *frame* of ``k`` tangent vectors is
    stored row-wise with shape ``(B, k, n)``: row ``V[b, j]`` is one tangent
    vector of trajectory ``b``. :meth:`step_tangent` returns the rows
    ``J_t V[b, j]``, i.e. ``(J_t Q)^T`` for the column frame ``Q = V^T``: the
    forward Jacobian, never its transpose. Rows make the tangent map one
    matrix product with the (transposed) weight matrices and put the frame in
    the column-major layout that LAPACK's QR expects.
    """

    state_size = None
    input_size = None
    state_layout = ()
    batch_first = None
    signature = None
    nonfinite_parameters = ()
    n_models = 1
    nbytes = 0

    def step(self, state, x):
        """Advance a batch of states one step: ``(B, n), (B, d) -> (B, n)``."""
        raise NotImplementedError

    def step_tangent(self, state, x, frames):
        """Advance states and tangent frames one step.

        Parameters
        ----------
        state : Tensor of shape (B, n)
        x : Tensor of shape (B, input_size)
        frames : Tensor of shape (B, k, n)
            Row-wise tangent vectors at ``state``.

        Returns
        -------
        next_state : Tensor of shape (B, n)
        next_frames : Tensor of shape (B, k, n)
            Row ``[b, j]`` is ``J_t(state[b], x[b]) @ frames[b, j]``.
        """
        raise NotImplementedError

    def initial_state(self, batch_size, *, dtype=torch.float64, device="cpu"):
        """The default initial state: zeros, as PyTorch's recurrent modules use."""
        return torch.zeros(batch_size, self.state_size, dtype=dtype, device=device)

    def working_numbers(self, k):
        """Numbers of the compute dtype one trajectory needs with a frame of ``k`` vectors.

        The default suits a step function differentiated by ``vmap(jvp)``, which
        carries the tangent of every intermediate: a few times ``k * n``.
        """
        n = self.state_size
        return k * (8 * n + k) + 8 * n

    def shell(self):
        """What planning needs of the system (:attr:`signature`, sizes,
        :meth:`working_numbers`), without large tensors; the system itself by default."""
        return self

    @classmethod
    def stack(cls, systems):
        """One system advancing several systems of one :attr:`signature` together."""
        raise NotImplementedError(f"{cls.__name__} does not stack")

    def to(self, device=None, dtype=None):
        """A copy of the system whose tensors live on ``device`` with ``dtype``."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(state_size={self.state_size}, input_size={self.input_size})"
