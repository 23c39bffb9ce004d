"""DQN, top to bottom: act epsilon-greedily -> n-step transitions into a replay buffer ->
minibatch TD updates (double Q, dueling heads, Huber loss, prioritized replay) ->
target network sync.

The loss is a pure function (``dqn_loss``). Runners act with the Q network
they were last sent; the n-step returns are assembled here, per runner and
environment, from consecutive sample batches (a restarted runner's pending
steps are dropped).
"""

from __future__ import annotations

import collections
import copy

import numpy as np
import torch
from torch import nn

from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig
from skate.rllib.learner import Learner, mean_metrics
from skate.rllib.module import NumpyState, mlp
from skate.rllib.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer


class DQNConfig(AlgorithmConfig):
    """DQN's settings, with RLlib's names.

    >>> DQNConfig().training(n_step=3).n_step
    3
    """

    TRAINING_EXTRA = {
        "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 50000,
                                 "alpha": 0.6, "beta": 0.4},
        "target_network_update_freq": 500, "n_step": 1, "double_q": True, "dueling": True,
        "epsilon": [(0, 1.0), (10000, 0.05)], "num_steps_sampled_before_learning_starts": 1000,
        "minibatch_size": 32, "training_intensity": 1.0, "rollout_steps_per_iteration": 64,
        "td_error_loss_fn": "huber", "tau": 1.0, "min_sample_timesteps_per_iteration": 1000}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or DQN)
        self._values.update(lr=5e-4, train_batch_size=32, num_env_runners=0,
                            model={"fcnet_hiddens": [256], "fcnet_activation": "relu"})


class QModule(NumpyState, nn.Module):
    """Q-values for a Discrete action space; dueling: V(s) + A(s, a) - mean_a A(s, a)."""

    def __init__(self, observation_space, action_space, model_config: dict | None = None):
        super().__init__()
        import gymnasium as gym

        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"DQN needs a Discrete action space, got {action_space}")
        cfg = {"fcnet_hiddens": [256], "fcnet_activation": "relu", "dueling": True,
               **(model_config or {})}
        self.n = int(action_space.n)
        self.dueling = cfg["dueling"]
        n_in = int(np.prod(observation_space.shape))
        hid = list(cfg["fcnet_hiddens"])
        self.advantage = mlp(n_in, hid, self.n, cfg["fcnet_activation"], out_gain=1.0)
        self.state_value = mlp(n_in, hid, 1, cfg["fcnet_activation"], out_gain=1.0) \
            if self.dueling else None

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.reshape(obs.shape[0], -1)
        a = self.advantage(x)
        if self.state_value is None:
            return a
        return self.state_value(x) + a - a.mean(dim=1, keepdim=True)

    forward = q_values  # what DistributedDataParallel calls

    @torch.no_grad()
    def forward_inference(self, batch: dict) -> dict:
        return {"actions": self.q_values(batch["obs"]).argmax(dim=1)}

    @torch.no_grad()
    def forward_exploration(self, batch: dict) -> dict:
        greedy = self.q_values(batch["obs"]).argmax(dim=1)
        eps = float(batch.get("epsilon", 0.0))
        explore = torch.rand(greedy.shape[0]) < eps
        random = torch.randint(0, self.n, greedy.shape)
        return {"actions": torch.where(explore, random, greedy)}

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        return actions.numpy()


def epsilon_at(schedule, step: int) -> float:
    """Piecewise-linear schedule [(step, value), ...], constant after the last point.

    >>> epsilon_at([(0, 1.0), (100, 0.1)], 50)
    0.55
    """
    if isinstance(schedule, (int, float)):
        return float(schedule)
    pts = sorted(schedule)
    if step <= pts[0][0]:
        return float(pts[0][1])
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if step <= s1:
            return float(v0 + (v1 - v0) * (step - s0) / (s1 - s0))
    return float(pts[-1][1])


def dqn_loss(q_taken, target, weights, kind: str = "huber"):
    """(loss, td errors): importance-weighted Huber (or squared) TD loss."""
    td = q_taken - target
    if kind == "huber":
        per = torch.nn.functional.smooth_l1_loss(q_taken, target, reduction="none")
    else:
        per = 0.5 * td ** 2
    return (weights * per).mean(), td.detach()


class DQNLearner(Learner):
    """TD updates on replay minibatches, and the target network they bootstrap from."""

    def build(self) -> None:
        c = self.config
        self.target = copy.deepcopy(self.module)
        self.optimizer = self.adam(lr=c.lr)

    def update(self, batch: dict, sync_target: bool = False) -> dict:
        """One gradient step per minibatch of ``batch`` (arrays ``[K, minibatch, ...]``), then
        the target network moved towards the online one if ``sync_target``. Returns the
        mean metrics and the TD errors of this learner's rows (``[K, rows]``)."""
        c = self.config
        data = self.tensors(batch, ("obs", "next_obs", "actions", "returns", "discounts",
                                    "terminateds", "weights"))
        k, mb = data["obs"].shape[:2]
        rows, share = self.my_slice(0, mb)
        tds, logs = [], []
        for j in range(k):
            d = {key: v[j, rows] for key, v in data.items()}
            with torch.no_grad():
                next_q_target = self.target.q_values(d["next_obs"])
                if c.double_q:  # the online network picks, the target network values
                    pick = self.module.q_values(d["next_obs"]).argmax(dim=1, keepdim=True)
                    next_q = next_q_target.gather(1, pick).squeeze(1)
                else:
                    next_q = next_q_target.max(dim=1).values
                target = d["returns"] + d["discounts"] * (1 - d["terminateds"]) * next_q
            q = self.train_module(d["obs"]).gather(1, d["actions"].long()[:, None]).squeeze(1)
            loss, td = dqn_loss(q, target, d["weights"], c.td_error_loss_fn)
            self.apply_gradients(loss, self.optimizer, share)
            tds.append(td)
            logs.append(torch.stack([loss.detach(), q.detach().mean(), td.abs().mean()]))
        if sync_target:
            with torch.no_grad():
                for t, src in zip(self.target.parameters(), self.module.parameters()):
                    t.mul_(1 - c.tau).add_(c.tau * src)
        means = torch.stack(logs).mean(0).tolist()
        return {"metrics": dict(zip(("qf_loss", "qf_mean", "td_error_mean"), means)),
                "td_errors": torch.stack(tds).cpu().numpy()}

    def get_state(self) -> dict:
        return {**super().get_state(), "target": self.target.state_dict()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if state.get("target") is not None:
            self.target.load_state_dict(state["target"])
        else:
            self.target.load_state_dict(self.module.state_dict())


# Settings that learn CartPole here (100-episode mean >= 400 in ~62k env steps).
TUNED = {
    "CartPole-v1": {"rollout_steps_per_iteration": 4, "lr": 1e-3, "n_step": 3,
                    "target_network_update_freq": 500, "epsilon": [(0, 1.0), (10000, 0.02)],
                    "num_steps_sampled_before_learning_starts": 1000, "minibatch_size": 64,
                    "training_intensity": 16,
                    "model": {"fcnet_hiddens": [128, 128], "fcnet_activation": "relu"}},
}


class DQN(Algorithm):
    """Deep Q-learning (``DQNConfig().environment(...).build()``)."""

    config_class = DQNConfig
    module_class = QModule

    TUNED = TUNED
    learner_class = DQNLearner

    def module_config(self, c) -> dict:
        return {**c.model, "dueling": c.dueling}

    def setup_learner(self) -> None:
        c = self.algo_config
        rb = {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 50000, "alpha": 0.6,
              "beta": 0.4, **c.replay_buffer_config}
        prioritized = "Prioritized" in rb["type"]
        self.buffer = (PrioritizedReplayBuffer(rb["capacity"], rb["alpha"], seed=c.seed)
                       if prioritized else ReplayBuffer(rb["capacity"], seed=c.seed))
        self.beta = rb["beta"] if prioritized else 0.0
        self._pending: dict = {}  # (runner, env) -> deque of (obs, action, reward)
        self._since_target = 0

    def training_step(self) -> dict:
        """Rounds of act -> store -> learn until ``min_sample_timesteps_per_iteration`` env
        steps were sampled (RLlib's default for DQN: 1000), so one ``train()`` is a useful
        amount of work, not 4 steps."""
        c = self.algo_config
        sampled, batches, logs = 0, [], []
        while True:
            eps = epsilon_at(c.epsilon, self.steps_lifetime)
            # 1. act: every runner steps its envs epsilon-greedily with the current Q net
            new = self.sample(c.rollout_steps_per_iteration, epsilon=eps)
            batches += new
            sampled += sum(b["env_steps"] for b in new)
            for i in self.restarted_runners:
                for key in [k for k in self._pending if k[0] == i]:
                    del self._pending[key]
            self.restarted_runners.clear()
            # 2. n-step transitions into the replay buffer
            added = sum(self._store(b) for b in new)
            self._since_target += added
            # 3. TD updates on minibatches, as many as the training intensity asks, and
            # 4. the target network synced every target_network_update_freq steps
            if len(self.buffer) >= c.num_steps_sampled_before_learning_starts:
                n = max(1, int(round(added * c.training_intensity / c.minibatch_size)))
                sync = self._since_target >= c.target_network_update_freq
                if sync:
                    self._since_target = 0
                logs.append(self._update(n, sync))
            if sampled >= c.min_sample_timesteps_per_iteration:
                break
        self._last_batches = batches  # this iteration's episodes and steps, for the metrics
        metrics: dict = {"epsilon": eps, "replay_buffer_size": len(self.buffer),
                         "num_updates": sum(m.pop("num_updates") for m in logs)}
        if logs:
            metrics.update({k: float(np.mean([m[k] for m in logs])) for k in logs[0]})
        return {"learners": {"default_policy": metrics}}

    def _store(self, b: dict) -> int:
        c = self.algo_config
        T, N = b["rewards"].shape
        rows: dict = collections.defaultdict(list)
        for i in range(N):
            q = self._pending.setdefault((b["runner"], i), collections.deque())
            for t in range(T):
                if not b["valid"][t, i]:
                    continue
                q.append((b["obs"][t, i], b["actions"][t, i], b["rewards"][t, i]))
                done = bool(b["terminateds"][t, i])
                ended = done or bool(b["truncateds"][t, i])
                while q and (len(q) >= c.n_step or ended):
                    ret = sum(r * c.gamma ** k for k, (_, _, r) in enumerate(q))
                    o, a, _ = q[0]
                    rows["obs"].append(o)
                    rows["actions"].append(a)
                    rows["returns"].append(ret)
                    rows["next_obs"].append(b["next_obs"][t, i])
                    rows["terminateds"].append(done)
                    rows["discounts"].append(c.gamma ** len(q))
                    q.popleft()
                    if not ended:
                        break
                if ended:
                    q.clear()
        if not rows:
            return 0
        self.buffer.add({k: np.asarray(v, np.float32 if k != "actions" else np.int64)
                         for k, v in rows.items()})
        return len(rows["obs"])

    def _update(self, n: int, sync_target: bool) -> dict:
        """``n`` minibatches from the buffer through the learner(s); priorities updated."""
        mbs = [self.buffer.sample(self.algo_config.minibatch_size, beta=self.beta)
               for _ in range(n)]
        batch = {k: np.stack([m[k] for m in mbs]) for k in mbs[0] if k != "indices"}
        results = self.learn(batch, sync_target=sync_target)
        td = np.concatenate([r["td_errors"] for r in results], axis=1)  # ranks' rows in order
        for m, errors in zip(mbs, td):
            self.buffer.update_priorities(m["indices"], errors)
        return {**mean_metrics([r["metrics"] for r in results]), "num_updates": n}
