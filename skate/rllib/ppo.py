"""PPO, top to bottom: rollout -> advantages -> epochs x minibatches -> metrics.

The machinery (env-runner actors, weight broadcast, episode metrics,
checkpoints) lives in ``algorithm.py``; this file is the algorithm. The loss
is a pure function (``ppo_loss``) with RLlib's terms: the clipped surrogate,
the value loss (squared error clipped at ``vf_clip_param``), the entropy
bonus and an adaptive KL penalty (``kl_coeff`` moves towards ``kl_target``).
"""

from __future__ import annotations

import numpy as np

from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig
from skate.rllib.lazy_torch import torch
from skate.rllib.learner import Learner, mean_metrics
from skate.rllib.postprocessing import compute_gae, explained_variance, normalize


class PPOConfig(AlgorithmConfig):
    """PPO's settings, with RLlib's defaults.

    >>> PPOConfig().training(lambda_=0.95).lambda_
    0.95
    """

    TRAINING_EXTRA = {"lambda": 1.0, "clip_param": 0.3, "vf_clip_param": 10.0,
                      "minibatch_size": 128, "num_epochs": 30, "entropy_coeff": 0.0,
                      "vf_loss_coeff": 1.0, "kl_coeff": 0.2, "kl_target": 0.01,
                      "use_kl_loss": True, "use_gae": True, "sgd_minibatch_size": None,
                      "num_sgd_iter": None}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or PPO)


def ppo_loss(logp, old_logp, advantages, vf_preds, value_targets, entropy, *, clip_param,
             vf_clip_param, vf_loss_coeff, entropy_coeff, kl_coeff):
    """(total loss, metrics as 0-d tensors) of one minibatch; every argument a 1-D tensor
    of one length. Metrics stay tensors: reading each as a float would cost a sync per
    minibatch."""
    ratio = torch.exp(logp - old_logp)
    surrogate = torch.min(advantages * ratio,
                          advantages * torch.clamp(ratio, 1 - clip_param, 1 + clip_param))
    vf_loss = torch.clamp((vf_preds - value_targets) ** 2, 0, vf_clip_param).mean()
    kl = (old_logp - logp).mean()  # an estimate of KL(old || new) from the samples
    policy_loss = -surrogate.mean()
    mean_entropy = entropy.mean()
    total = policy_loss + vf_loss_coeff * vf_loss
    # a term whose coefficient is 0 stays out of the graph: backward then skips it
    if entropy_coeff:
        total = total - entropy_coeff * mean_entropy
    if kl_coeff:
        total = total + kl_coeff * kl
    return total, {"policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
                   "entropy": mean_entropy.detach(), "mean_kl_loss": kl.detach(),
                   "total_loss": total.detach()}


class PPOLearner(Learner):
    """Epochs x minibatches of the clipped objective on one training batch."""

    def build(self) -> None:
        from skate.rllib import stacked_loss

        self.optimizer = self.adam(lr=self.config.lr, eps=1e-5)
        # the written-out gradient where it applies; DistributedDataParallel needs its
        # own forward, so N learners take autograd's
        self.fused = stacked_loss.ppo_stacked_loss if (
            stacked_loss.supports(self.module) and self.world_size == 1) else None

    def update(self, batch: dict, seed: int = 0, kl_coeff: float = 0.0) -> dict:
        c = self.config
        data = self.tensors(batch, ("obs", "actions", "action_logp", "advantages",
                                    "value_targets"))
        n = data["obs"].shape[0]
        mb = min(c.sgd_minibatch_size or c.minibatch_size or n, n)  # None: the whole batch
        epochs = c.num_sgd_iter or c.num_epochs
        order_rng = torch.Generator().manual_seed(seed)  # the same order on every rank
        coeffs = {"clip_param": c.clip_param, "vf_clip_param": c.vf_clip_param,
                  "vf_loss_coeff": c.vf_loss_coeff, "entropy_coeff": c.entropy_coeff,
                  "kl_coeff": kl_coeff}
        logs, norms = [], []
        for _ in range(epochs):
            order = torch.randperm(n, generator=order_rng).to(self.device)
            shuffled = {k: v[order] for k, v in data.items()}  # minibatches become views
            if self.fused is not None:  # it reads the per-row columns as numpy (CPU)
                columns = [shuffled[k].numpy() for k in ("actions", "action_logp",
                                                         "advantages", "value_targets")]
            for start in range(0, n - mb + 1, mb):
                rows, share = self.my_slice(start, start + mb)
                if self.fused is not None:
                    loss, m = self.fused(self.module, shuffled["obs"][rows],
                                         *(col[rows] for col in columns), **coeffs)
                else:
                    d = {k: v[rows] for k, v in shuffled.items()}
                    out = self.train_module({"obs": d["obs"], "actions": d["actions"]})
                    loss, parts = ppo_loss(out["action_logp"], d["action_logp"],
                                           d["advantages"], out["vf_preds"],
                                           d["value_targets"], out["entropy"], **coeffs)
                    m = torch.stack(list(parts.values()))
                norm = self.apply_gradients(loss, self.optimizer, share)
                logs.append(m)
                if norm is not None:
                    norms.append(norm)
        if not logs:
            return {}
        # autograd's metrics are tensors (reading each would sync a GPU), the fused ones floats
        means = (torch.stack(logs).mean(0).tolist() if isinstance(logs[0], torch.Tensor)
                 else np.mean(logs, 0).tolist())
        metrics = dict(zip(("policy_loss", "vf_loss", "entropy", "mean_kl_loss",
                            "total_loss"), means))
        if norms:
            metrics["gradients_total_norm"] = float(torch.stack(norms).mean())
        return metrics


# Settings found to learn fast here: rl-zoo's CartPole settings with 32 vectorized envs,
# a 2048-step batch in 512-sample minibatches and a higher learning rate (a sweep on 2
# cores, 8 seeds: 73k-149k env steps, 2.9-6.3 s of training, median 3.6 s, to a
# 100-episode mean of 475). `rllib train --algo PPO --env CartPole-v1` starts from these.
TUNED = {
    "CartPole-v1": {"num_env_runners": 0, "num_envs_per_env_runner": 32, "lr": 2e-3,
                    "gamma": 0.98, "lambda": 0.8, "clip_param": 0.2, "num_epochs": 10,
                    "minibatch_size": 512, "train_batch_size": 2048, "vf_clip_param": 1000.0,
                    "use_kl_loss": False, "model": {"fcnet_hiddens": [64, 64]}},
}


class PPO(Algorithm):
    """Proximal policy optimisation (``PPOConfig().environment(...).build()``)."""

    config_class = PPOConfig

    TUNED = TUNED
    learner_class = PPOLearner

    supports_multi_agent = True

    def setup_learner(self) -> None:
        c = self.algo_config
        self.kl_coeffs = {pid: c.kl_coeff if c.use_kl_loss else 0.0
                          for pid in self.learner_groups}

    def learner_state(self) -> dict:
        return {"kl_coeffs": dict(self.kl_coeffs)}

    def set_learner_state(self, state: dict) -> None:
        # checkpoints before multi-agent had the one policy's coefficient
        self.kl_coeffs = state.get("kl_coeffs") or {"default_policy": state["kl_coeff"]}

    def training_step(self) -> dict:
        c = self.algo_config
        # 1. rollout: every runner steps its environments with the current weights
        batches = self.sample(c.train_batch_size)
        if not self.multi_agent:
            return {"learners": {"default_policy": self.train_policy("default_policy", batches)}}
        # each trained policy learns from its agents' experience (one column per runner)
        return {"learners": {pid: self.train_policy(pid, own) for pid in self.learner_groups
                             if (own := [b["policy_batches"][pid] for b in batches
                                         if pid in b["policy_batches"]])}}

    def train_policy(self, policy: str, batches: list) -> dict:
        """Advantages, the policy's epochs x minibatches, and its metrics."""
        c = self.algo_config
        # 2. advantages, per runner (each batch is time-major [T, N])
        flat: dict = {k: [] for k in ("obs", "actions", "action_logp", "vf_preds",
                                      "advantages", "value_targets")}
        for b in batches:
            adv, targets = compute_gae(b["rewards"], b["vf_preds"], b["next_values"],
                                       b["terminateds"], b["truncateds"], c.gamma,
                                       c["lambda"] if c.use_gae else 1.0)
            keep = b["valid"].reshape(-1)  # steps that only reset an env are not trained on
            for k, v in (("advantages", adv), ("value_targets", targets)):
                flat[k].append(v.reshape(-1)[keep])
            for k in ("obs", "action_logp", "vf_preds", "actions"):
                flat[k].append(b[k].reshape((-1,) + b[k].shape[2:])[keep])
        data = {k: np.concatenate(v) for k, v in flat.items()}
        data["advantages"] = normalize(data["advantages"]).astype(np.float32)
        # 3. epochs x minibatches of the clipped objective, on the learner(s)
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.torch_rng))
        kl_coeff = self.kl_coeffs[policy]
        metrics = mean_metrics(self.learn(data, policy, seed=seed, kl_coeff=kl_coeff))
        # 4. metrics, and the KL penalty moved towards its target
        if c.use_kl_loss and metrics:
            kl = metrics["mean_kl_loss"]
            if kl > 2.0 * c.kl_target:
                kl_coeff *= 1.5
            elif kl < 0.5 * c.kl_target:
                kl_coeff *= 0.5
            self.kl_coeffs[policy] = kl_coeff
        metrics["curr_kl_coeff"] = kl_coeff
        metrics["vf_explained_var"] = explained_variance(data["value_targets"],
                                                         data["vf_preds"])
        metrics["num_module_steps_trained"] = len(data["obs"])
        return metrics
