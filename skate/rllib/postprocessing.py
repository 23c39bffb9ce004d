"""Advantages, value targets and normalization: pure numpy functions on fixed-shape batches.

Batches are time-major, ``[T, N]`` for T steps of N vectorized environments.
``rewards[t]`` follows the action at ``t``; ``terminateds[t]`` says the episode
ended there with no future (value 0); ``truncateds[t]`` says it was cut off
(time limit), so its future is still worth ``next_values[t]`` (the value of the
final observation). Each step's own ``next_values[t]`` is the value of the
observation that followed it — so a batch needs no special last row.
"""

from __future__ import annotations

import numpy as np


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                terminateds: np.ndarray, truncateds: np.ndarray, gamma: float,
                lambda_: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimates and value targets, ``[T, N]`` each.

    >>> import numpy as np
    >>> r = np.array([[1.0], [1.0], [1.0]]); v = np.zeros((3, 1)); nv = np.zeros((3, 1))
    >>> done = np.array([[False], [False], [True]]); cut = np.zeros((3, 1), bool)
    >>> adv, targets = compute_gae(r, v, nv, done, cut, gamma=0.5, lambda_=1.0)
    >>> adv[:, 0].tolist()
    [1.75, 1.5, 1.0]
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    T = rewards.shape[0]
    not_terminal = 1.0 - np.asarray(terminateds, dtype=np.float64)
    # the trace stops at any episode end; a truncated step still bootstraps its own value
    cont = 1.0 - np.maximum(np.asarray(terminateds, np.float64),
                            np.asarray(truncateds, np.float64))
    deltas = rewards + gamma * np.asarray(next_values, np.float64) * not_terminal - values
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        last = deltas[t] + gamma * lambda_ * cont[t] * last
        adv[t] = last
    return adv.astype(np.float32), (adv + values).astype(np.float32)


def vtrace(behaviour_logp: np.ndarray, target_logp: np.ndarray, rewards: np.ndarray,
           values: np.ndarray, next_values: np.ndarray, terminateds: np.ndarray,
           truncateds: np.ndarray, gamma: float, clip_rho: float = 1.0,
           clip_pg_rho: float | None = 1.0, clip_c: float = 1.0,
           lambda_: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """V-trace (Espeholt et al., 2018): off-policy value targets ``vs`` and policy-gradient
    advantages, ``[T, N]`` each, for steps taken by a behaviour policy ``mu`` and
    valued for a target policy ``pi`` (``target_logp``, ``values`` and ``next_values``
    are the learner's; ``next_values`` follows the convention of :func:`compute_gae`).

    With ``rho_t = min(clip_rho, pi/mu)`` and ``c_t = lambda * min(clip_c, pi/mu)``:
    ``vs_t = V_t + sum_k gamma^(k-t) (c_t ... c_(k-1)) rho_k delta_k`` over the rest of the
    episode within the batch, ``delta_k = r_k + gamma V_(k+1) - V_k``, and the advantage
    is ``min(clip_pg_rho, pi/mu) (r_t + gamma vs_(t+1) - V_t)``, where ``vs_(t+1)`` is
    ``next_values[t]`` plus the successor's correction ``vs - V`` within an episode, and
    ``next_values[t]`` alone at its end or the batch's last row (``clip_pg_rho=None``:
    no importance weight, for a loss that applies its own ratio). On-policy with
    ``lambda=1`` the targets are the discounted returns:

    >>> import numpy as np
    >>> lp = np.zeros((3, 1)); r = np.ones((3, 1)); v = np.zeros((3, 1))
    >>> done = np.array([[False], [False], [True]]); cut = np.zeros((3, 1), bool)
    >>> vs, adv = vtrace(lp, lp, r, v, v, done, cut, gamma=0.5)
    >>> vs[:, 0].tolist(), adv[:, 0].tolist()
    ([1.75, 1.5, 1.0], [1.75, 1.5, 1.0])
    """
    rewards = np.asarray(rewards, np.float64)
    values = np.asarray(values, np.float64)
    next_values = np.asarray(next_values, np.float64)
    ratios = np.exp(np.asarray(target_logp, np.float64) - np.asarray(behaviour_logp,
                                                                     np.float64))
    rho = np.minimum(clip_rho, ratios)
    c = lambda_ * np.minimum(clip_c, ratios)
    terminated = np.asarray(terminateds, bool)
    discount = gamma * (1.0 - terminated)
    # the correction is carried back only within an episode
    cont = ~(terminated | np.asarray(truncateds, bool))
    deltas = rho * (rewards + discount * next_values - values)
    corrections = np.zeros_like(rewards)
    acc = np.zeros(rewards.shape[1:], np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = deltas[t] + discount[t] * cont[t] * c[t] * acc
        corrections[t] = acc
    vs = values + corrections
    # the successor's target: its value plus its correction, within an episode
    next_vs = next_values.copy()
    next_vs[:-1] += cont[:-1] * corrections[1:]
    advantages = rewards + discount * next_vs - values
    if clip_pg_rho is not None:
        advantages = np.minimum(clip_pg_rho, ratios) * advantages
    return vs.astype(np.float32), advantages.astype(np.float32)


def explained_variance(targets: np.ndarray, predictions: np.ndarray) -> float:
    """1 - Var[y - y_hat] / Var[y] (1 is perfect, 0 no better than the mean, may be < 0)."""
    var = float(np.var(targets))
    if var == 0:
        return 0.0
    return float(1.0 - np.var(targets - predictions) / var)


def normalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Zero mean, unit variance (the usual treatment of advantages per batch)."""
    return (x - x.mean()) / (x.std() + eps)


class RunningMeanStd:
    """Mean and variance over every sample seen so far (for observation normalization).

    >>> rms = RunningMeanStd(shape=(1,))
    >>> rms.update(np.array([[1.0], [3.0]])); rms.mean.tolist(), rms.var.tolist()
    ([2.0], [1.0])
    """

    def __init__(self, shape: tuple, clip: float = 10.0):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 0.0
        self.clip = clip

    def update(self, x: np.ndarray) -> None:
        if x.shape[0]:
            self.merge({"mean": x.mean(axis=0), "var": x.var(axis=0), "count": x.shape[0]})

    def merge(self, other: dict) -> None:
        """Fold in another's statistics (``get_state()``), as if its samples were seen here
        (the parallel form of Welford's update)."""
        mean, var, n = (np.asarray(other["mean"], np.float64),
                        np.asarray(other["var"], np.float64), float(other["count"]))
        if n == 0:
            return
        if self.count == 0:
            self.mean, self.var, self.count = mean, var, n
            return
        delta = mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + var * n + delta ** 2 * self.count * n / total
        self.var, self.count = m2 / total, total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -self.clip,
                       self.clip).astype(np.float32)

    def get_state(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count}

    def set_state(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], np.float64)
        self.var = np.asarray(state["var"], np.float64)
        self.count = float(state["count"])
