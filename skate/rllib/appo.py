"""APPO, top to bottom: IMPALA's asynchronous sampling -> V-trace targets and advantages ->
PPO's clipped surrogate, epochs x minibatches on each training batch.

Sampling, staleness and the weights' way back are IMPALA's (``impala.py``).
The learner values a training batch once with its current weights (V-trace,
with the advantages left without V-trace's importance weight) and then runs
PPO's update on it (``PPOLearner``: the clipped ratio of the learner's policy
to the policy that sampled, the clipped value loss, entropy and the optional
KL penalty, whose coefficient moves towards ``kl_target`` as in PPO).
"""

from __future__ import annotations

import numpy as np

from skate.rllib.impala import IMPALA, IMPALAConfig, IMPALALearner, _columns, vtrace_targets
from skate.rllib.lazy_torch import torch
from skate.rllib.ppo import PPOLearner


class APPOConfig(IMPALAConfig):
    """APPO's settings, with RLlib's names and defaults.

    >>> APPOConfig().training(clip_param=0.2).clip_param
    0.2
    """

    TRAINING_EXTRA = {
        **IMPALAConfig.TRAINING_EXTRA, "clip_param": 0.4, "vf_clip_param": float("inf"),
        "use_kl_loss": False, "kl_coeff": 1.0, "kl_target": 0.01, "num_epochs": 1,
        "minibatch_size": None, "sgd_minibatch_size": None, "num_sgd_iter": None}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or APPO)


class APPOLearner(PPOLearner):
    """V-trace on the whole training batch, then PPO's epochs x minibatches over its steps."""

    update_fragments = IMPALALearner.update_fragments

    def update(self, batch: dict, seed: int = 0, kl_coeff: float = 0.0) -> dict:
        T, B = np.asarray(batch["rewards"]).shape
        d = _columns(batch, slice(0, B))  # every rank values all of it; PPO slices rows
        n = T * B
        obs = torch.from_numpy(d["obs"].reshape((n,) + d["obs"].shape[2:])).to(self.device)
        actions = torch.from_numpy(d["actions"].reshape((n,) + d["actions"].shape[2:]))
        with torch.no_grad():
            out = self.module.forward_train({"obs": obs, "actions": actions.to(self.device)})
        vs, adv = vtrace_targets(self.module, d, out["action_logp"], out["vf_preds"],
                                 self.config, weighted=False)
        keep = d["valid"].reshape(-1)
        flat = {"obs": d["obs"].reshape((n,) + d["obs"].shape[2:])[keep],
                "actions": d["actions"].reshape((n,) + d["actions"].shape[2:])[keep],
                "action_logp": d["action_logp"].reshape(-1)[keep],
                "advantages": adv.reshape(-1).cpu().numpy()[keep],
                "value_targets": vs.reshape(-1).cpu().numpy()[keep]}
        return super().update(flat, seed=seed, kl_coeff=kl_coeff)


class APPO(IMPALA):
    """Asynchronous PPO (``APPOConfig().environment(...).build()``)."""

    config_class = APPOConfig
    learner_class = APPOLearner

    TUNED: dict = {
        "CartPole-v1": {**IMPALA.TUNED["CartPole-v1"], "num_epochs": 4,
                        "minibatch_size": 128, "clip_param": 0.2, "lr": 1e-3},
    }

    def setup_learner(self) -> None:
        super().setup_learner()
        c = self.algo_config
        self.kl_coeff = c.kl_coeff if c.use_kl_loss else 0.0

    def update_kwargs(self) -> dict:
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.torch_rng))
        return {"seed": seed, "kl_coeff": self.kl_coeff}

    def training_step(self) -> dict:
        result = super().training_step()
        c = self.algo_config
        metrics = result["learners"]["default_policy"]
        if c.use_kl_loss and "mean_kl_loss" in metrics:
            if metrics["mean_kl_loss"] > 2.0 * c.kl_target:
                self.kl_coeff *= 1.5
            elif metrics["mean_kl_loss"] < 0.5 * c.kl_target:
                self.kl_coeff *= 0.5
        metrics["curr_kl_coeff"] = self.kl_coeff
        return result

    def learner_state(self) -> dict:
        return {"kl_coeff": self.kl_coeff}

    def set_learner_state(self, state: dict) -> None:
        self.kl_coeff = state.get("kl_coeff", self.kl_coeff)
