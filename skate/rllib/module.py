"""The RLModule: a torch policy network and a value network for one environment's spaces.

Discrete actions get a categorical head, boxes a Gaussian with a learned,
state-independent log standard deviation. ``forward_inference`` (greedy),
``forward_exploration`` (sampled) and ``forward_train`` (log-probabilities,
entropy and values of given actions) follow RLlib's new API stack names.
Weights travel as a dict of numpy arrays (``get_state`` / ``set_state``), so
env runners need no GPU and a checkpoint is a plain torch state dict.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "linear": nn.Identity,
               "silu": nn.SiLU}


def mlp(n_in: int, hiddens: list, n_out: int, activation: str, out_gain: float) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"model: fcnet_activation {activation!r} is not one of "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    layers: list = []
    last = n_in
    for h in hiddens:
        lin = nn.Linear(last, h)
        nn.init.orthogonal_(lin.weight, np.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers += [lin, ACTIVATIONS[activation]()]
        last = h
    out = nn.Linear(last, n_out)
    nn.init.orthogonal_(out.weight, out_gain)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


class RLModule(nn.Module):
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
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"observations must be a Box space (got {observation_space}); "
                             f"wrap the environment to flatten them")
        self.obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            n_out = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box):
            n_out = int(np.prod(action_space.shape))
            self.low = torch.as_tensor(action_space.low, dtype=torch.float32)
            self.high = torch.as_tensor(action_space.high, dtype=torch.float32)
        else:
            raise ValueError(f"actions must be Discrete or Box (got {action_space})")
        self.action_shape = action_space.shape
        hid, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.pi = mlp(self.obs_dim, hid, n_out, act, out_gain=0.01)
        self.vf = mlp(self.obs_dim, hid, 1, act, out_gain=1.0)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.zeros(n_out))

    def _dist(self, obs: torch.Tensor):
        logits = self.pi(obs.reshape(obs.shape[0], -1))
        # no argument validation: it costs more than the forward pass of a small network
        if self.discrete:
            return torch.distributions.Categorical(logits=logits, validate_args=False)
        return torch.distributions.Normal(logits, self.log_std.exp().expand_as(logits),
                                          validate_args=False)

    def _logp(self, dist, actions):
        lp = dist.log_prob(actions)
        return lp if self.discrete else lp.sum(-1)

    def _entropy(self, dist):
        e = dist.entropy()
        return e if self.discrete else e.sum(-1)

    @torch.no_grad()
    def forward_inference(self, batch: dict) -> dict:
        dist = self._dist(batch["obs"])
        actions = dist.probs.argmax(-1) if self.discrete else dist.mean
        return {"actions": actions}

    @torch.no_grad()
    def forward_exploration(self, batch: dict) -> dict:  # batch["epsilon"]: unused here
        obs = batch["obs"]
        dist = self._dist(obs)
        actions = dist.sample()
        return {"actions": actions, "action_logp": self._logp(dist, actions),
                "vf_preds": self.vf(obs.reshape(obs.shape[0], -1)).squeeze(-1)}

    def forward_train(self, batch: dict) -> dict:
        obs = batch["obs"]
        dist = self._dist(obs)
        return {"action_logp": self._logp(dist, batch["actions"]),
                "entropy": self._entropy(dist),
                "vf_preds": self.vf(obs.reshape(obs.shape[0], -1)).squeeze(-1)}

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(obs.reshape(obs.shape[0], -1)).squeeze(-1)

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """What the environment receives (Gaussian samples clipped into the Box)."""
        a = actions.cpu()
        if not self.discrete and getattr(self, "clip_actions", True):
            a = torch.maximum(torch.minimum(a, self.high), self.low)
        return a.numpy()

    def get_state(self) -> dict:
        return {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}

    def set_state(self, state: dict) -> None:
        self.load_state_dict({k: torch.tensor(v) for k, v in state.items()})  # copies: the
        # arrays may be read-only views of the object store
