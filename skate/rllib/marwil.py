"""MARWIL and BC, top to bottom: recorded steps -> discounted returns -> weighted imitation.

Both learn from experience recorded by ``config.offline_data(output=dir)`` (see
offline.py) and never step an environment while training; evaluation, when
asked for, runs the policy in the environment. MARWIL (Wang et al., 2018)
imitates the recorded actions weighted by ``exp(beta * A / c)``: ``A`` is the
step's discounted return minus the value net's estimate, ``c`` the root of a
moving average of ``A``'s square (RLlib's normalization), so better-than-usual
actions count more; the value net learns the returns alongside. BC is MARWIL
with ``beta = 0``: plain behaviour cloning, every recorded action alike, no
value net trained.
"""

from __future__ import annotations

import numpy as np

from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig
from skate.rllib.lazy_torch import torch
from skate.rllib.learner import Learner, mean_metrics

MAX_WEIGHT = 20.0  # exp(beta * A / c) is capped: one lucky return must not dominate


class MARWILConfig(AlgorithmConfig):
    """MARWIL's settings, with RLlib's names and defaults.

    >>> MARWILConfig().training(beta=0.5).beta
    0.5
    """

    TRAINING_EXTRA = {"beta": 1.0, "vf_coeff": 1.0,
                      "moving_average_sqd_adv_norm_start": 100.0,
                      "moving_average_sqd_adv_norm_update_rate": 1e-8}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or MARWIL)
        self._values.update(lr=1e-4, train_batch_size=2000, num_env_runners=0)


class BCConfig(MARWILConfig):
    """Behaviour cloning: MARWIL with ``beta = 0``.

    >>> BCConfig().beta
    0.0
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class or BC)
        self._values["beta"] = 0.0


def marwil_loss(logp, values, returns, sqd_adv_norm, *, beta, vf_coeff):
    """(total loss, metrics) of one minibatch (``sqd_adv_norm``: the moving average of the
    squared advantage).

    With ``beta = 0`` the loss is the recorded actions' negative log-likelihood alone."""
    if beta == 0.0:
        policy_loss = -logp.mean()
        return policy_loss, {"policy_loss": policy_loss.detach()}
    adv = returns - values
    weights = torch.clamp(torch.exp(beta * adv.detach() / (1e-8 + sqd_adv_norm ** 0.5)),
                          max=MAX_WEIGHT)
    policy_loss = -(weights * logp).mean()
    vf_loss = 0.5 * (adv ** 2).mean()
    total = policy_loss + vf_coeff * vf_loss
    return total, {"policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
                   "total_loss": total.detach()}


class MARWILLearner(Learner):
    """Minibatches of the weighted imitation loss over the rows it is given."""

    def build(self) -> None:
        self.optimizer = self.adam(lr=self.config.lr)
        self.sqd_adv_norm = float(self.config.moving_average_sqd_adv_norm_start)

    def update(self, batch: dict) -> dict:
        c = self.config
        data = self.tensors(batch, ("obs", "actions", "returns"))
        n = data["obs"].shape[0]
        mb = min(int(c.train_batch_size), n)
        logs = []
        for start in range(0, n - mb + 1, mb):
            rows, share = self.my_slice(start, start + mb)
            d = {k: v[rows] for k, v in data.items()}
            out = self.train_module({"obs": d["obs"], "actions": d["actions"]})
            if c.beta:  # the advantage norm's moving average, before this minibatch's loss
                adv2 = float(((d["returns"] - out["vf_preds"].detach()) ** 2).mean())
                rate = c.moving_average_sqd_adv_norm_update_rate
                self.sqd_adv_norm += rate * (adv2 - self.sqd_adv_norm)
            loss, m = marwil_loss(out["action_logp"], out["vf_preds"], d["returns"],
                                     self.sqd_adv_norm, beta=c.beta, vf_coeff=c.vf_coeff)
            self.apply_gradients(loss, self.optimizer, share)
            logs.append({k: float(v) for k, v in m.items()})
        metrics = {k: float(np.mean([m[k] for m in logs])) for k in logs[0]} if logs else {}
        if c.beta:
            metrics["moving_average_sqd_adv_norm"] = self.sqd_adv_norm
        return metrics

    def get_state(self) -> dict:
        return {**super().get_state(), "sqd_adv_norm": self.sqd_adv_norm}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.sqd_adv_norm = state.get("sqd_adv_norm", self.sqd_adv_norm)


class MARWIL(Algorithm):
    """Advantage-weighted imitation from recorded experience
    (``MARWILConfig().offline_data(input_=dir).environment(env).build()``)."""

    config_class = MARWILConfig
    learner_class = MARWILLearner
    offline = True

    def setup_learner(self) -> None:
        c = self.algo_config
        # read at the first train(): a restored checkpoint that is only evaluated or
        # used to act needs no recording (it may be gone)
        self.dataset = None
        self._order_rng = np.random.default_rng(c.seed)
        self.steps_trained_lifetime = 0

    def training_step(self) -> dict:
        from skate.rllib.offline import load_dataset

        c = self.algo_config
        if self.dataset is None:
            self.dataset = load_dataset(c.input_, c.gamma)
            if not len(self.dataset["obs"]):
                raise ValueError(f"offline input {c.input_!r} holds no steps")
        n, mb = len(self.dataset["obs"]), min(int(c.train_batch_size), len(self.dataset["obs"]))
        # a pass over the recording (every step, in minibatches) a train() call, unless
        # told how many minibatches
        iters = c.dataset_num_iters_per_learner or -(-n // mb)
        order = np.concatenate([self._order_rng.permutation(n)
                                for _ in range(-(-iters * mb // n))])[:iters * mb]
        batch = {k: self.dataset[k][order] for k in ("obs", "actions", "returns")}
        metrics = mean_metrics(self.learn(batch))
        self.steps_trained_lifetime += len(order)
        return {"learners": {"default_policy": metrics},
                "num_env_steps_trained_lifetime": self.steps_trained_lifetime}

    def learner_state(self) -> dict:
        return {"steps_trained_lifetime": self.steps_trained_lifetime}

    def set_learner_state(self, state: dict) -> None:
        self.steps_trained_lifetime = state.get("steps_trained_lifetime", 0)


class BC(MARWIL):
    """Behaviour cloning from recorded experience
    (``BCConfig().offline_data(input_=dir).environment(env).build()``)."""

    config_class = BCConfig
