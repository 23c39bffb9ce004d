"""SAC, top to bottom: act with a squashed Gaussian -> transitions into a replay buffer ->
twin-Q TD updates against Polyak-averaged target networks -> the actor against the smaller
Q -> the entropy temperature towards its target.

Soft actor-critic (Haarnoja et al., 2018) for Box actions. The policy samples
``u ~ N(mean(s), std(s))`` and acts ``a = tanh(u)``, rescaled into the action
space's bounds (the replay buffer keeps ``a`` in [-1, 1]). The critic is two
Q networks, evaluated as one ``StackedMLP`` (one batched matmul per layer for
both); their targets are copies moved ``tau`` of the way each update. The
temperature ``alpha`` is learned so that the policy's entropy stays near
``target_entropy`` (``"auto"``: minus the action dimensions). Before
``num_steps_sampled_before_learning_starts`` steps, actions are uniform.
The losses are pure functions (``sac_losses``).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig, check_model
from skate.rllib.learner import Adam, Learner, mean_metrics
from skate.rllib.module import NumpyState, StackedMLP, mlp
from skate.rllib.replay_buffer import ReplayBuffer

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class SACConfig(AlgorithmConfig):
    """SAC's settings, with RLlib's names and defaults.

    >>> SACConfig().training(tau=0.01).tau
    0.01
    """

    TRAINING_EXTRA = {
        "actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "tau": 5e-3,
        "initial_alpha": 1.0, "target_entropy": "auto", "n_step": 1,
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 1_000_000},
        "num_steps_sampled_before_learning_starts": 1500, "training_intensity": None,
        "target_network_update_freq": 0, "rollout_steps_per_iteration": 1,
        "min_sample_timesteps_per_iteration": 100, "minibatch_size": None}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or SAC)
        self._values.update(train_batch_size=256, num_env_runners=0,
                            model={"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"})

    def training(self, **kwargs) -> "SACConfig":
        t = kwargs.get("target_entropy")
        if t is not None and t != "auto" and (isinstance(t, bool) or
                                              not isinstance(t, (int, float))):
            raise ValueError(f"target_entropy must be 'auto' or a number, got {t!r}")
        if kwargs.get("n_step", 1) != 1:
            raise ValueError("SAC here learns from 1-step transitions: n_step must be 1")
        for k in ("actor_lr", "critic_lr", "alpha_lr", "initial_alpha"):
            v = kwargs.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or v <= 0):
                raise ValueError(f"{k} must be a number > 0, got {v!r}")
        tau = kwargs.get("tau")
        if tau is not None and not 0 < tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {tau!r}")
        return super().training(**kwargs)


def squashed_sample(mean, log_std, noise):
    """(action in [-1, 1], its log-probability) of ``tanh(mean + std * noise)``; the
    change of variables is ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``."""
    u = mean + log_std.exp() * noise
    logp = (-0.5 * noise * noise - log_std - _HALF_LOG_2PI).sum(-1)
    logp = logp - (2 * (math.log(2.0) - u - nn.functional.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), logp


class SACModule(NumpyState, nn.Module):
    """A squashed Gaussian policy and two Q networks for a Box action space.

    >>> import gymnasium as gym
    >>> env = gym.make("Pendulum-v1")
    >>> m = SACModule(env.observation_space, env.action_space, {"fcnet_hiddens": [16]})
    >>> out = m.forward_exploration({"obs": torch.zeros(2, 3)})
    >>> out["actions"].shape, bool(out["actions"].abs().max() <= 1)
    (torch.Size([2, 1]), True)
    """

    def __init__(self, observation_space, action_space, model_config: dict | None = None):
        super().__init__()
        import gymnasium as gym

        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"SAC needs a Box (continuous) action space, got {action_space}")
        if not (np.all(np.isfinite(action_space.low)) and
                np.all(np.isfinite(action_space.high))):
            raise ValueError("SAC squashes actions into the action space's bounds: they "
                             "must be finite")
        cfg = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu", **(model_config or {})}
        check_model(cfg, observation_space, action_space)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(np.prod(action_space.shape))
        self.action_shape = action_space.shape
        hid, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.pi = mlp(self.obs_dim, hid, 2 * self.act_dim, act, out_gain=0.01)
        self.q = StackedMLP(self.obs_dim + self.act_dim, hid, [1, 1], act,
                            out_gains=[1.0, 1.0])
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32),
                             persistent=False)

    def dist(self, obs: torch.Tensor):
        """(mean, log std) of the pre-squash Gaussian."""
        out = self.pi(obs.reshape(obs.shape[0], -1))
        mean, log_std = out[:, :self.act_dim], out[:, self.act_dim:]
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor):
        """(actions in [-1, 1], log-probabilities), differentiable in the policy."""
        mean, log_std = self.dist(obs)
        return squashed_sample(mean, log_std, torch.randn_like(mean))

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[2, batch]``: both Q networks' values of ``actions`` (in [-1, 1])."""
        x = torch.cat([obs.reshape(obs.shape[0], -1), actions.reshape(actions.shape[0], -1)],
                      1)
        return self.q(x)[:, :, 0]

    @torch.no_grad()
    def forward_inference(self, batch: dict) -> dict:
        return {"actions": torch.tanh(self.dist(batch["obs"])[0])}

    @torch.no_grad()
    def forward_exploration(self, batch: dict) -> dict:
        """Sampled actions; ``epsilon >= 1`` (before learning starts) draws them uniformly."""
        if float(batch.get("epsilon", 0.0)) >= 1.0:
            n = batch["obs"].shape[0]
            return {"actions": torch.rand(n, self.act_dim) * 2 - 1}
        return {"actions": self.sample(batch["obs"])[0]}

    forward = forward_inference

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """[-1, 1] rescaled into the action space's bounds."""
        a = actions.cpu()
        return (self.low + (a + 1) * 0.5 * (self.high - self.low)).reshape(
            (a.shape[0],) + tuple(self.action_shape)).numpy()


def sac_losses(module, target, log_alpha, d: dict, gamma: float, target_entropy: float):
    """(critic loss, actor loss, alpha loss, metrics) of one minibatch ``d`` (tensors:
    obs, actions in [-1, 1], rewards, next_obs, terminateds). The critic's target uses
    the target networks' smaller Q less the entropy term at the next state; the actor
    maximizes the smaller online Q of its own fresh actions plus entropy."""
    alpha = log_alpha.exp().detach()
    with torch.no_grad():
        next_a, next_logp = module.sample(d["next_obs"])
        next_q = target.q_values(d["next_obs"], next_a).min(0).values - alpha * next_logp
        y = d["rewards"] + gamma * (1 - d["terminateds"]) * next_q
    q = module.q_values(d["obs"], d["actions"])
    critic_loss = 0.5 * ((q - y) ** 2).mean(1).sum()
    a, logp = module.sample(d["obs"])
    q_pi = module.q_values(d["obs"], a).min(0).values
    actor_loss = (alpha * logp - q_pi).mean()
    alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
    return critic_loss, actor_loss, alpha_loss, {
        "qf_loss": critic_loss.detach(), "policy_loss": actor_loss.detach(),
        "alpha_loss": alpha_loss.detach(), "qf_mean": q.detach().mean(),
        "entropy": -logp.detach().mean()}


class SACLearner(Learner):
    """Critic, actor and temperature updates, and the target networks they use."""

    def build(self) -> None:
        c, m = self.config, self.module
        self.target = copy.deepcopy(m)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(c.initial_alpha),
                                                   device=self.device))
        self.target_entropy = (-float(m.act_dim) if c.target_entropy == "auto"
                               else float(c.target_entropy))
        self.critic_opt = Adam(m.q.parameters(), lr=c.critic_lr)
        self.actor_opt = Adam(m.pi.parameters(), lr=c.actor_lr)
        self.alpha_opt = Adam([self.log_alpha], lr=c.alpha_lr)
        self.updates = 0

    def update(self, batch: dict, **_unused) -> dict:
        """One step of each optimizer per minibatch of ``batch`` (``[K, minibatch, ...]``)."""
        c = self.config
        data = self.tensors(batch, ("obs", "actions", "rewards", "next_obs", "terminateds"))
        logs = []
        for j in range(data["obs"].shape[0]):
            d = {k: v[j] for k, v in data.items()}
            critic_loss, actor_loss, alpha_loss, m = sac_losses(
                self.module, self.target, self.log_alpha, d, c.gamma, self.target_entropy)
            self.critic_opt.zero_grad()
            critic_loss.backward()
            self._clip(self.module.q.parameters())
            self.critic_opt.step()
            self.actor_opt.zero_grad()
            actor_loss.backward()  # its gradients reach the critic too; the next
            self._clip(self.module.pi.parameters())  # critic step clears them first
            self.actor_opt.step()
            self.alpha_opt.zero_grad()
            alpha_loss.backward()
            self.alpha_opt.step()
            self.updates += 1
            freq = c.target_network_update_freq
            if not freq or self.updates % freq == 0:
                with torch.no_grad():
                    src, dst = list(self.module.q.parameters()), list(self.target.q.parameters())
                    torch._foreach_lerp_(dst, src, c.tau)
            logs.append(torch.stack(list(m.values())))
        means = torch.stack(logs).mean(0).tolist()
        out = dict(zip(("qf_loss", "policy_loss", "alpha_loss", "qf_mean", "entropy"), means))
        out["alpha_value"] = float(self.log_alpha.detach().exp())
        return out

    def _clip(self, params) -> None:
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(list(params), self.config.grad_clip)

    def get_state(self) -> dict:
        return {"optimizer": None, "critic_opt": self.critic_opt.state_dict(),
                "actor_opt": self.actor_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(),
                "log_alpha": float(self.log_alpha.detach()), "target": self.target.state_dict(),
                "updates": self.updates}

    def set_state(self, state: dict) -> None:
        if state.get("target") is None:  # a fresh start from given weights
            self.target.load_state_dict(self.module.state_dict())
            return
        self.target.load_state_dict(state["target"])
        for name in ("critic_opt", "actor_opt", "alpha_opt"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.fill_(state["log_alpha"])
        self.updates = state["updates"]


# rl-zoo's SAC settings for Pendulum (its defaults and SB3's otherwise): 100 random steps,
# then one update of a 256-row minibatch per env step, learning rate 1e-3 everywhere.
TUNED = {
    "Pendulum-v1": {"actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3,
                    "num_steps_sampled_before_learning_starts": 100,
                    "min_sample_timesteps_per_iteration": 1000},
}


class SAC(Algorithm):
    """Soft actor-critic (``SACConfig().environment("Pendulum-v1").build()``)."""

    config_class = SACConfig
    module_class = SACModule
    learner_class = SACLearner

    TUNED = TUNED

    def setup_learner(self) -> None:
        c = self.algo_config
        rb = {"capacity": 1_000_000, **c.replay_buffer_config}
        self.buffer = ReplayBuffer(int(rb["capacity"]), seed=c.seed)

    def training_step(self) -> dict:
        """Rounds of act -> store -> learn until ``min_sample_timesteps_per_iteration`` env
        steps were sampled."""
        c = self.algo_config
        mb = c.minibatch_size or c.train_batch_size
        sampled, batches, logs = 0, [], []
        while sampled < c.min_sample_timesteps_per_iteration:
            random = self.steps_lifetime < c.num_steps_sampled_before_learning_starts
            new = self.sample(c.rollout_steps_per_iteration, epsilon=1.0 if random else 0.0)
            batches += new
            added = sum(self._store(b) for b in new)
            sampled += sum(b["env_steps"] for b in new)
            if len(self.buffer) >= max(mb, 1) and not random:
                # one update per env step (SB3's and RLlib's natural ratio), or as many as
                # training_intensity (trained rows per sampled row) asks
                n = added if c.training_intensity is None else \
                    max(1, int(round(added * c.training_intensity / mb)))
                if n:
                    logs.append(self._update(n, mb))
        self._last_batches = batches
        metrics: dict = {"replay_buffer_size": len(self.buffer),
                         "num_updates": sum(m.pop("num_updates") for m in logs)}
        if logs:
            metrics.update({k: float(np.mean([m[k] for m in logs])) for k in logs[0]})
        return {"learners": {"default_policy": metrics}}

    def _store(self, b: dict) -> int:
        keep = b["valid"].reshape(-1)
        if not keep.any():
            return 0
        flat = {k: b[k].reshape((-1,) + b[k].shape[2:])[keep]
                for k in ("obs", "actions", "rewards", "next_obs", "terminateds")}
        self.buffer.add({k: v.astype(np.float32) for k, v in flat.items()})
        return int(keep.sum())

    def _update(self, n: int, mb: int) -> dict:
        rows = [self.buffer.sample(mb) for _ in range(n)]
        batch = {k: np.stack([r[k] for r in rows]) for k in
                 ("obs", "actions", "rewards", "next_obs", "terminateds")}
        return {**mean_metrics(self.learn(batch)), "num_updates": n}
