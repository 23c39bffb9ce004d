"""Replay buffers for off-policy algorithms: uniform, and prioritized (a sum tree).

Both store transitions column-wise in preallocated numpy arrays (a ring of
``capacity``), so adding and sampling are vectorized. The prioritized buffer
samples index ``i`` with probability ``p_i^alpha / sum p^alpha`` and returns
importance weights ``(N * P(i))^-beta`` normalized by their maximum.
"""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Uniform sampling.

    >>> b = ReplayBuffer(capacity=3, seed=0)
    >>> _ = b.add({"x": np.arange(5.0)}); len(b), sorted(b.columns["x"].tolist())
    (3, [2.0, 3.0, 4.0])
    """

    def __init__(self, capacity: int, seed: int | None = None):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"replay buffer capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self.columns: dict = {}
        self.size = 0
        self.next = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, batch: dict) -> np.ndarray:
        """Add rows (every column the same length); returns the slots they went to."""
        n = len(next(iter(batch.values())))
        if not self.columns:
            for k, v in batch.items():
                v = np.asarray(v)
                self.columns[k] = np.zeros((self.capacity,) + v.shape[1:], v.dtype)
        slots = (self.next + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.columns[k][slots] = v
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        return slots

    def sample(self, n: int, beta: float = 0.0) -> dict:
        idx = self.rng.integers(0, self.size, size=n)
        out = {k: v[idx] for k, v in self.columns.items()}
        out["weights"] = np.ones(n, np.float32)
        out["indices"] = idx
        return out

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        pass


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritization over a sum tree (new rows get the largest priority).

    >>> b = PrioritizedReplayBuffer(capacity=4, alpha=1.0, seed=0)
    >>> _ = b.add({"x": np.arange(4.0)})
    >>> b.update_priorities(np.array([0, 1, 2, 3]), np.array([0.0, 0.0, 0.0, 10.0]))
    >>> set(b.sample(20)["x"].tolist())
    {3.0}
    """

    def __init__(self, capacity: int, alpha: float = 0.6, eps: float = 1e-6,
                 seed: int | None = None):
        super().__init__(capacity, seed)
        self.alpha, self.eps = alpha, eps
        self.tree_size = 1
        while self.tree_size < capacity:
            self.tree_size *= 2
        self.tree = np.zeros(2 * self.tree_size, np.float64)  # leaves at [tree_size:]
        self.max_priority = 1.0

    def _set(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Leaves, then every ancestor level by level (all slots at once: numpy per level,
        not Python per slot and level). A repeated slot keeps its last priority; repeated
        ancestors are just summed twice."""
        slots, priorities = np.asarray(slots, np.int64), np.asarray(priorities, np.float64)
        last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
        nodes = slots[last] + self.tree_size
        self.tree[nodes] = priorities[last]
        while nodes[0] > 1:  # every leaf is at the same depth
            nodes = nodes // 2
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def add(self, batch: dict) -> np.ndarray:
        slots = super().add(batch)
        self._set(slots, np.full(len(slots), self.max_priority ** self.alpha))
        return slots

    def _find(self, masses: np.ndarray) -> np.ndarray:
        """The leaf each mass falls in, walking down the tree for all masses at once."""
        nodes = np.ones(len(masses), np.int64)
        masses = np.array(masses, np.float64)
        while nodes[0] < self.tree_size:  # every walk is at the same depth
            left = self.tree[2 * nodes]
            right = masses > left
            masses -= left * right
            nodes = 2 * nodes + right
        return nodes - self.tree_size

    def sample(self, n: int, beta: float = 0.4) -> dict:
        total = self.tree[1]
        # stratified: one draw from each of n equal slices of the total mass
        bounds = (np.arange(n) + self.rng.random(n)) * (total / n)
        idx = np.minimum(self._find(bounds), self.size - 1)
        probs = self.tree[idx + self.tree_size] / total
        weights = (self.size * probs) ** (-beta)
        out = {k: v[idx] for k, v in self.columns.items()}
        out["weights"] = (weights / weights.max()).astype(np.float32)
        out["indices"] = idx
        return out

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        p = np.abs(np.asarray(td_errors, np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(p.max()))
        self._set(np.asarray(indices), p ** self.alpha)
