"""An RLModule's policy and value nets stepped in numpy, for env runners.

A runner calls its policy once per environment step on a handful of rows. At
that size the arithmetic is nothing and the cost is per operation: a torch op
costs ~5-10 us of dispatch, a numpy one ~1 us, so one forward pass of
RLlib's default model ([256, 256] tanh, policy and value net) at batch size 1
takes ~30 us in numpy against ~90 us in torch -- most of what sampling costs
besides the environment itself.

``NumpyPolicy`` reads the module's own CPU parameters through numpy views
(no copy), so a ``set_state`` or an optimizer step, both in place, show
through. It computes what the module's ``forward_exploration`` /
``forward_inference`` / ``value`` compute (tested against them); the random
draws come from a numpy ``Generator`` instead of torch's.
"""

from __future__ import annotations

import numpy as np

# Above this many multiply-adds per forward pass (rows x the widest layer squared),
# the arithmetic outweighs torch's dispatch and numpy's BLAS may start threads of its
# own in every runner: torch (one thread per runner) steps those instead.
NUMPY_MAX_MACS = 1_000_000

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def _elu(h):
    return np.where(h > 0, h, np.expm1(np.minimum(h, 0)))


ACTIVATIONS = {"tanh": lambda h: np.tanh(h, out=h), "relu": lambda h: np.maximum(h, 0, out=h),
               "linear": lambda h: h, "elu": _elu, "silu": lambda h: h / (1 + np.exp(-h))}


class NumpyPolicy:
    """The stacked policy/value MLP of a CPU ``RLModule``, evaluated with numpy.

    >>> import gymnasium as gym
    >>> from skate.rllib.module import RLModule
    >>> env = gym.make("CartPole-v1")
    >>> m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [16]})
    >>> p = NumpyPolicy.of(m, rows=1)
    >>> actions, logp, values = p.explore(np.zeros((1, 4), np.float32), np.random.default_rng(0))
    >>> actions.shape, logp.shape, values.shape
    ((1,), (1,), (1,))
    """

    def __init__(self, module):
        net = module.net
        self.layers = [(w.detach().numpy(), b.detach().numpy())
                       for w, b in zip(net.weights, net.biases)]
        self.act = ACTIVATIONS[module.activation]
        self.n_out, self.discrete = module.n_out, module.discrete
        if not self.discrete:
            self.log_std = module.log_std.detach().numpy()
            self.low, self.high = module.low.numpy(), module.high.numpy()
            self.clip = getattr(module, "clip_actions", True)

    @classmethod
    def of(cls, module, rows: int):
        """A NumpyPolicy for ``module`` at ``rows`` observations a step, or None where
        torch is the better choice (a module on a GPU, a shared trunk, a custom module
        class, or a network large enough for its arithmetic to dominate)."""
        from skate.rllib.module import RLModule

        if type(module) is not RLModule or getattr(module, "net", None) is None:
            return None
        w0 = module.net.weights[0]
        if w0.device.type != "cpu" or w0.dtype.itemsize != 4:
            return None
        widest = max(w.shape[2] for w in module.net.weights)
        if rows * widest * widest > NUMPY_MAX_MACS:
            return None
        return cls(module)

    def _heads(self, obs: np.ndarray):
        h = obs.reshape(obs.shape[0], -1).astype(np.float32, copy=False)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = np.matmul(h, w)  # [rows, in] x [k, in, out] -> [k, rows, out]
            h += b
            if i < last:
                h = self.act(h)
        return h[0, :, :self.n_out], h[1, :, 0]

    def explore(self, obs: np.ndarray, rng: np.random.Generator):
        """(sampled actions, their log-probabilities, values) for a batch of observations."""
        dist, values = self._heads(obs)
        rows = np.arange(dist.shape[0])
        if self.discrete:  # Gumbel-max sampling, as the torch module does
            gumbel = -np.log(-np.log(rng.random(dist.shape, dtype=np.float32)))
            actions = (dist + gumbel).argmax(-1)
            top = dist.max(-1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(dist - top).sum(-1))
            return actions, dist[rows, actions] - lse, values
        std = np.exp(self.log_std)
        noise = rng.standard_normal(dist.shape, dtype=np.float32)
        actions = dist + noise * std
        logp = (-0.5 * noise * noise - self.log_std - _HALF_LOG_2PI).sum(-1)
        return actions, logp.astype(np.float32), values

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        dist, _ = self._heads(obs)
        return dist.argmax(-1) if self.discrete else dist

    def value(self, obs: np.ndarray) -> np.ndarray:
        return self._heads(obs)[1]

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """What the environment receives (Gaussian samples clipped into the Box)."""
        if not self.discrete and self.clip:
            return np.clip(actions, self.low, self.high)
        return actions
