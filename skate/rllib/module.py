"""The RLModule: a torch policy network and a value network for one environment's spaces.

Discrete actions get a categorical head, boxes a Gaussian with a learned,
state-independent log standard deviation. ``forward_inference`` (greedy),
``forward_exploration`` (sampled) and ``forward_train`` (log-probabilities,
entropy and values of given actions) follow RLlib's new API stack names;
``forward`` is ``forward_train``, so DistributedDataParallel can wrap a module.

The policy and value networks have the same hidden layers, so they are kept
as one ``StackedMLP``: each layer is a single batched matmul over both nets.
For the small networks RL uses, the cost is per operation rather than per
multiply-add, and this halves the operations; on two cores the two nets'
halves of each matmul also run side by side. The log-probabilities and
entropies are written out (no ``torch.distributions`` objects, whose set-up
costs more than a small network's forward pass).

Weights travel as a dict of numpy arrays (``get_state`` / ``set_state``), so
env runners need no GPU and a checkpoint is a plain torch state dict.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from skate.rllib.config import check_model

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "linear": nn.Identity,
               "silu": nn.SiLU}
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        check_model({"fcnet_activation": name})  # raises, saying which names there are
    return ACTIVATIONS[name]()


def _orthogonal(n_in: int, n_out: int, gain: float) -> torch.Tensor:
    w = torch.empty(n_out, n_in)
    nn.init.orthogonal_(w, gain)
    return w


def mlp(n_in: int, hiddens: list, n_out: int, activation: str, out_gain: float) -> nn.Sequential:
    """Linear layers with ``activation`` between them (orthogonal init, zero biases)."""
    act = _activation(activation)
    layers: list = []
    last = n_in
    for h in hiddens:
        lin = nn.Linear(last, h)
        lin.weight.data.copy_(_orthogonal(last, h, np.sqrt(2)))
        nn.init.zeros_(lin.bias)
        layers += [lin, type(act)()]
        last = h
    out = nn.Linear(last, n_out)
    out.weight.data.copy_(_orthogonal(last, n_out, out_gain))
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


class StackedMLP(nn.Module):
    """``len(n_outs)`` MLPs with the same hidden layers, evaluated together.

    Layer ``l`` holds the weights of every net as one ``[k, in, out]`` tensor;
    net ``j`` uses the first ``n_outs[j]`` outputs of the last layer (the rest
    of its columns stay zero and get zero gradient).

    >>> net = StackedMLP(4, [8], [2, 1], "tanh", out_gains=[0.01, 1.0])
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([2, 3, 2])
    """

    def __init__(self, n_in: int, hiddens: list, n_outs: list, activation: str,
                 out_gains: list):
        super().__init__()
        self.k, self.act = len(n_outs), _activation(activation)
        sizes = [n_in, *hiddens, max(n_outs)]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for layer, (a, b) in enumerate(zip(sizes, sizes[1:])):
            last = layer == len(sizes) - 2
            w = torch.zeros(self.k, a, b)
            for j in range(self.k):
                cols = n_outs[j] if last else b
                w[j, :, :cols] = _orthogonal(a, cols, out_gains[j] if last else np.sqrt(2)).T
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(self.k, 1, b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, n_in]`` -> ``[k, batch, max(n_outs)]``."""
        # the Parameter objects themselves, listed once: ParameterList indexing costs more
        # than a layer's matmul at batch size 1 (moving or loading weights keeps them)
        layers = self.__dict__.get("_layers")
        if layers is None:
            layers = self.__dict__["_layers"] = list(zip(self.weights, self.biases))
        h = x.unsqueeze(0).expand(self.k, -1, -1)
        last = len(layers) - 1
        for layer, (w, b) in enumerate(layers):
            h = torch.baddbmm(b, h, w)
            if layer < last:
                h = self.act(h)
        return h

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_layers", None)  # a copy lists its own parameters
        return state


class NumpyState:
    """Weights as a dict of numpy arrays: what travels to env runners and learners."""

    def get_state(self) -> dict:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.state_dict().items()}

    def set_state(self, state: dict) -> None:
        # copies (the arrays may be read-only views of the object store), onto the
        # module's own device
        self.load_state_dict({k: torch.tensor(v) for k, v in state.items()})


class RLModule(NumpyState, nn.Module):
    """Policy + value function for ``observation_space`` / ``action_space``.

    >>> import gymnasium as gym
    >>> env = gym.make("CartPole-v1")
    >>> m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [16]})
    >>> m.forward_inference({"obs": torch.zeros(2, 4)})["actions"].shape
    torch.Size([2])
    """

    def __init__(self, observation_space, action_space, model_config: dict | None = None):
        super().__init__()
        import gymnasium as gym

        cfg = {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh",
               "vf_share_layers": False, **(model_config or {})}
        check_model(cfg, observation_space, action_space)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            n_out = int(action_space.n)
        else:
            n_out = int(np.prod(action_space.shape))
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32),
                                 persistent=False)
            self.register_buffer("high", torch.as_tensor(action_space.high,
                                                         dtype=torch.float32),
                                 persistent=False)
        self.n_out, self.action_shape = n_out, action_space.shape
        hid, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.activation = act
        self.shared = bool(cfg["vf_share_layers"]) and bool(hid)
        if self.shared:  # one trunk, two linear heads
            self.trunk = nn.Sequential(*mlp(self.obs_dim, hid[:-1], hid[-1], act, np.sqrt(2)),
                                       _activation(act))
            self.pi_head = mlp(hid[-1], [], n_out, act, out_gain=0.01)
            self.vf_head = mlp(hid[-1], [], 1, act, out_gain=1.0)
        else:
            self.net = StackedMLP(self.obs_dim, hid, [n_out, 1], act, out_gains=[0.01, 1.0])
        if not self.discrete:
            self.log_std = nn.Parameter(torch.zeros(n_out))

    def _heads(self, obs: torch.Tensor):
        """(policy outputs [B, n_out], values [B])."""
        x = obs.reshape(obs.shape[0], -1)
        if self.shared:
            h = self.trunk(x)
            return self.pi_head(h), self.vf_head(h)[:, 0]
        out = self.net(x)
        return out[0, :, :self.n_out], out[1, :, 0]

    def _logp_entropy(self, dist_inputs: torch.Tensor, actions: torch.Tensor,
                      entropy: bool = True):
        """(log-probabilities of ``actions``, entropies or None)."""
        if self.discrete:
            logp_all = torch.log_softmax(dist_inputs, -1)
            logp = logp_all.gather(1, actions.long().unsqueeze(1)).squeeze(1)
            return logp, -(logp_all.exp() * logp_all).sum(-1) if entropy else None
        z = (actions - dist_inputs) * torch.exp(-self.log_std)
        logp = (-0.5 * z * z - self.log_std - _HALF_LOG_2PI).sum(-1)
        if not entropy:
            return logp, None
        return logp, (0.5 + _HALF_LOG_2PI + self.log_std).sum().expand(dist_inputs.shape[0])

    def _sample(self, dist_inputs: torch.Tensor) -> torch.Tensor:
        if self.discrete:  # Gumbel-max: a categorical sample in four elementwise ops
            # (torch.multinomial costs ~70 us a call at batch size 1)
            u = torch.rand_like(dist_inputs)
            return (dist_inputs - torch.log(-torch.log(u))).argmax(-1)
        return dist_inputs + torch.randn_like(dist_inputs) * self.log_std.exp()

    @torch.no_grad()
    def forward_inference(self, batch: dict) -> dict:
        dist_inputs, _ = self._heads(batch["obs"])
        return {"actions": dist_inputs.argmax(-1) if self.discrete else dist_inputs}

    @torch.no_grad()
    def forward_exploration(self, batch: dict) -> dict:  # batch["epsilon"]: unused here
        dist_inputs, values = self._heads(batch["obs"])
        actions = self._sample(dist_inputs)
        logp, _ = self._logp_entropy(dist_inputs, actions, entropy=False)
        return {"actions": actions, "action_logp": logp, "vf_preds": values}

    def forward_train(self, batch: dict) -> dict:
        dist_inputs, values = self._heads(batch["obs"])
        logp, entropy = self._logp_entropy(dist_inputs, batch["actions"])
        return {"action_logp": logp, "entropy": entropy, "vf_preds": values}

    forward = forward_train  # what DistributedDataParallel calls

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self._heads(obs)[1]

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """What the environment receives (Gaussian samples clipped into the Box)."""
        a = actions.cpu()
        if not self.discrete and getattr(self, "clip_actions", True):
            a = torch.maximum(torch.minimum(a, self.high.cpu()), self.low.cpu())
        return a.numpy()



def upgrade_state_v1(state: dict) -> dict:
    """A format-1 checkpoint's RLModule state dict (separate ``pi.*`` / ``vf.*``
    ``nn.Sequential`` nets) in today's stacked layout; other keys pass through."""
    if not any(k.startswith("pi.") for k in state):
        return state
    out = {k: v for k, v in state.items() if not k.startswith(("pi.", "vf."))}
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("pi.")})
    for i, layer in enumerate(layers):
        pw, vw = state[f"pi.{layer}.weight"].T, state[f"vf.{layer}.weight"].T
        pb, vb = state[f"pi.{layer}.bias"], state[f"vf.{layer}.bias"]
        cols = max(pw.shape[1], vw.shape[1])
        w, b = torch.zeros(2, pw.shape[0], cols), torch.zeros(2, 1, cols)
        w[0, :, :pw.shape[1]], w[1, :, :vw.shape[1]] = pw, vw
        b[0, 0, :pb.shape[0]], b[1, 0, :vb.shape[0]] = pb, vb
        out[f"net.weights.{i}"], out[f"net.biases.{i}"] = w, b
    return out
