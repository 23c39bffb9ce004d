"""IMPALA, top to bottom: runners sample without pause -> batches reach the learner through
the object store -> V-trace-corrected actor-critic updates -> weights back to the runners,
never more than ``max_staleness`` updates old.

There is no barrier per iteration. Every env runner always has
``max_requests_in_flight_per_env_runner`` sample requests queued, each
carrying the ref of the newest weights the algorithm had when it asked. A
request returns two objects (``EnvRunner.sample_for_learner``): a small
summary (finished episodes, env steps, the weights' version) that the
algorithm reads, and the batch, which only the learner reads. With learner
actors (``num_learners >= 1``) the batch's ref is handed to them, so a batch
goes from runner to learner through the object store and never through this
process. Those updates run asynchronously as well: up to ``learner_queue_size``
are queued on the learners, and after each one the algorithm asks for its
weights (a ref, not the values); a runner is given the newest weights that are
ready. With ``num_learners=0`` the learner runs in this process while the
runners go on sampling in theirs.

Staleness. A batch sampled with weights ``v`` and trained on after ``u``
updates were made (or sent to the learners) is ``u - v`` updates stale.
Batches staler than ``max_staleness`` are dropped, not trained on (counted in
``num_batches_dropped_stale``); V-trace corrects for the rest. The loss is a
pure function (``impala_loss``) over V-trace's targets
(:func:`skate.rllib.postprocessing.vtrace`).
"""

from __future__ import annotations

import collections

import numpy as np

import skate
from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig
from skate.rllib.lazy_torch import torch
from skate.rllib.learner import Learner, mean_metrics
from skate.rllib.postprocessing import explained_variance, vtrace

#: the batch columns a learner reads (time-major ``[T, N, ...]``)
COLUMNS = ("obs", "actions", "action_logp", "rewards", "terminateds", "truncateds", "valid",
           "next_obs")


class IMPALAConfig(AlgorithmConfig):
    """IMPALA's settings, with RLlib's names and defaults.

    >>> IMPALAConfig().training(vtrace_clip_rho_threshold=2.0).vtrace_clip_rho_threshold
    2.0
    """

    TRAINING_EXTRA = {
        "vtrace_clip_rho_threshold": 1.0, "vtrace_clip_pg_rho_threshold": 1.0,
        "vf_loss_coeff": 0.5, "entropy_coeff": 0.01, "lambda": 1.0,
        "broadcast_interval": 1, "max_requests_in_flight_per_env_runner": 2,
        "learner_queue_size": 2, "max_staleness": 8,
        "min_sample_timesteps_per_iteration": 2000}

    def __init__(self, algo_class=None):
        super().__init__(algo_class or IMPALA)
        self._values.update(lr=5e-4, train_batch_size=500, rollout_fragment_length=50,
                            grad_clip=40.0)

    def training(self, **kwargs) -> "IMPALAConfig":
        for k in ("broadcast_interval", "max_requests_in_flight_per_env_runner",
                  "learner_queue_size"):
            v = kwargs.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{k} must be an int >= 1, got {v!r}")
        v = kwargs.get("max_staleness")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"max_staleness must be an int >= 0 (updates), got {v!r}")
        return super().training(**kwargs)


def concat_fragments(fragments) -> dict:
    """Time-major batches ``[T, N_i, ...]`` side by side: one ``[T, sum N_i, ...]``."""
    if len(fragments) == 1:
        return {k: fragments[0][k] for k in COLUMNS}
    return {k: np.concatenate([f[k] for f in fragments], axis=1) for k in COLUMNS}


def impala_loss(logp, values, entropy, vs, advantages, mask, *, vf_loss_coeff,
                entropy_coeff):
    """(total loss, metrics as 0-d tensors): the policy gradient with V-trace's advantages,
    half the squared error to V-trace's targets, the entropy bonus; means over the steps
    where ``mask`` is 1 (every argument a 1-D tensor of one length)."""
    n = mask.sum().clamp(min=1.0)
    policy_loss = -(logp * advantages * mask).sum() / n
    vf_loss = 0.5 * ((values - vs) ** 2 * mask).sum() / n
    mean_entropy = (entropy * mask).sum() / n
    total = policy_loss + vf_loss_coeff * vf_loss - entropy_coeff * mean_entropy
    return total, {"policy_loss": policy_loss.detach(), "vf_loss": vf_loss.detach(),
                   "entropy": mean_entropy.detach(), "total_loss": total.detach()}


def vtrace_targets(module, d: dict, logp, values, config, weighted: bool = True):
    """V-trace's (value targets, advantages) as ``[T, B]`` tensors for the columns ``d``
    (numpy ``[T, B, ...]``), from the learner's log-probabilities and values of its steps
    (``[T * B]``, no gradient; ``weighted=False``: advantages without V-trace's
    importance weight, for a loss that applies its own ratio). The values of the steps'
    successors are the next row's, except at an episode's end and on the last row: those
    are valued from ``next_obs``."""
    T, B = d["rewards"].shape
    values = values.reshape(T, B)
    next_values = torch.zeros_like(values)
    next_values[:-1] = values[1:]
    need = d["terminateds"] | d["truncateds"]
    need[-1] = True
    t_idx, b_idx = np.nonzero(need)
    with torch.no_grad():
        obs = torch.as_tensor(d["next_obs"][t_idx, b_idx], device=values.device)
        next_values[t_idx, b_idx] = module.value(obs)
    vs, adv = vtrace(d["action_logp"], logp.reshape(T, B).cpu().numpy(), d["rewards"],
                     values.cpu().numpy(), next_values.cpu().numpy(), d["terminateds"],
                     d["truncateds"], config.gamma, config.vtrace_clip_rho_threshold,
                     config.vtrace_clip_pg_rho_threshold if weighted else None, 1.0,
                     config["lambda"])
    return (torch.from_numpy(vs).to(values.device),
            torch.from_numpy(adv).to(values.device))


def _columns(batch: dict, cols) -> dict:
    """This rank's columns of the batch, as writable numpy arrays."""
    return {k: np.array(np.asarray(batch[k])[:, cols]) for k in COLUMNS}


class IMPALALearner(Learner):
    """One gradient step of the V-trace actor-critic loss per training batch."""

    def build(self) -> None:
        self.optimizer = self.adam(lr=self.config.lr)

    def update_fragments(self, *fragments, **kwargs) -> dict:
        """Train on the runners' fragments, side by side (refs given to an actor call
        arrive here as the batches themselves)."""
        return self.update(concat_fragments(fragments), **kwargs)

    def update(self, batch: dict, **_unused) -> dict:
        c = self.config
        T, B = np.asarray(batch["rewards"]).shape
        cols, share = self.my_slice(0, B)  # a rank trains on its envs' whole sequences
        d = _columns(batch, cols)
        n = d["rewards"].size
        obs = torch.from_numpy(d["obs"].reshape((n,) + d["obs"].shape[2:])).to(self.device)
        actions = torch.from_numpy(d["actions"].reshape((n,) + d["actions"].shape[2:]))
        out = self.train_module({"obs": obs, "actions": actions.to(self.device)})
        vs, adv = vtrace_targets(self.module, d, out["action_logp"].detach(),
                                 out["vf_preds"].detach(), c)
        mask = torch.from_numpy(d["valid"].reshape(-1).astype(np.float32)).to(self.device)
        loss, parts = impala_loss(out["action_logp"], out["vf_preds"], out["entropy"],
                                  vs.reshape(-1), adv.reshape(-1), mask,
                                  vf_loss_coeff=c.vf_loss_coeff, entropy_coeff=c.entropy_coeff)
        norm = self.apply_gradients(loss, self.optimizer, share)
        metrics = {k: float(v) for k, v in parts.items()}
        if norm is not None:
            metrics["gradients_total_norm"] = float(norm)
        keep = d["valid"].reshape(-1)
        metrics["vf_explained_var"] = explained_variance(
            vs.reshape(-1).cpu().numpy()[keep], out["vf_preds"].detach().cpu().numpy()[keep])
        return metrics


class IMPALA(Algorithm):
    """Importance-weighted actor-learner (``IMPALAConfig().environment(...).build()``)."""

    config_class = IMPALAConfig
    learner_class = IMPALALearner

    TUNED = {
        "CartPole-v1": {"num_env_runners": 2, "num_envs_per_env_runner": 8,
                        "rollout_fragment_length": 32, "train_batch_size": 512, "lr": 1e-3,
                        "gamma": 0.99, "entropy_coeff": 0.0, "vf_loss_coeff": 0.5,
                        "model": {"fcnet_hiddens": [64, 64]}},
    }

    def setup_learner(self) -> None:
        c = self.algo_config
        if c.rollout_fragment_length == "auto":
            raise ValueError(f"{type(self).__name__} samples fixed-length fragments: set "
                             f"env_runners(rollout_fragment_length=<steps>)")
        self.weights_version = 0  # updates made (local learner) or sent (learner actors)
        self._module_version = 0  # the version self.module holds
        self._weights = None  # (version, ref) the runners are given
        self._pending_weights: collections.deque = collections.deque()  # (version, ref)
        self._inflight: dict = {}  # summary ref -> (runner index, batch ref)
        self._ready: collections.deque = collections.deque()  # (batch or ref, env steps)
        self._ready_steps = 0
        self._updates: collections.deque = collections.deque()  # learner calls in flight
        self.num_batches_dropped_stale = 0
        self.num_env_steps_trained = 0
        self._staleness: list = []

    # -- weights out -------------------------------------------------------------------------
    def _current_weights(self):
        """(version, ref) of the newest weights that are ready for the runners."""
        while self._pending_weights:  # the learners' weights, once they are there
            version, ref = self._pending_weights[0]
            if not skate.wait([ref], timeout=0)[0] and self._weights is not None:
                break
            self._pending_weights.popleft()
            self._weights = (version, ref)
        if self._weights is None:
            self._weights = (self.weights_version, skate.put(self.module.get_state()))
        return self._weights

    def _broadcast(self) -> None:
        """New weights for the runners after every ``broadcast_interval`` updates."""
        if self.weights_version % self.algo_config.broadcast_interval:
            return
        if self.learner_group.remote:
            self._pending_weights.append(
                (self.weights_version, self.learner_group.weights_async()))
        else:
            self._weights = (self.weights_version, skate.put(self.module.get_state()))

    # -- batches in ------------------------------------------------------------------------
    def _request(self, i: int) -> None:
        version, ref = self._current_weights()
        summary, batch = self.runners[i].sample_for_learner.remote(
            ref, version, self.algo_config.rollout_fragment_length, self._filter_state())
        self._inflight[summary] = (i, batch)

    def _fill(self) -> None:
        per = self.algo_config.max_requests_in_flight_per_env_runner
        counts = collections.Counter(i for i, _ in self._inflight.values())
        for i in range(len(self.runners)):
            for _ in range(per - counts[i]):
                self._request(i)

    def _next_batches(self) -> list:
        """(summary, batch or batch ref) of every sample request that is done, waiting
        for at least one."""
        c = self.algo_config
        if self.local_runner is not None:  # no runner actors: sample here, in turn
            return [self.local_runner.sample_for_learner(
                None, self.weights_version, c.rollout_fragment_length, self._filter_state())]
        self._fill()
        refs = list(self._inflight)
        ready, _ = skate.wait(refs, num_returns=1, timeout=c.sample_timeout_s)
        if not ready:
            raise TimeoutError(f"no env runner returned a batch within sample_timeout_s="
                               f"{c.sample_timeout_s}")
        ready, _ = skate.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        from skate.exceptions import RayActorError

        for ref in ready:
            if ref not in self._inflight:
                continue  # a request of a runner that died a moment ago
            i, batch = self._inflight.pop(ref)
            try:
                out.append((skate.get(ref), batch))
                self._failures_in_a_row = 0
            except RayActorError as e:
                for other in [r for r, (j, _) in self._inflight.items() if j == i]:
                    del self._inflight[other]  # its other requests die with it
                self.replace_failed_runner(i, e)
        self._fill()  # relaunch at once, so runners sample while this process trains
        return out

    # -- one iteration -----------------------------------------------------------------------
    def training_step(self) -> dict:
        c = self.algo_config
        sampled, summaries, logs = 0, [], []
        while sampled < c.min_sample_timesteps_per_iteration or not logs:
            for summary, batch in self._next_batches():
                summaries.append(summary)
                sampled += summary["env_steps"]
                self.record_batch(summary)
                staleness = self.weights_version - summary["weights_version"]
                if staleness > c.max_staleness:
                    self.num_batches_dropped_stale += 1
                    continue
                self._staleness.append(staleness)
                self._ready.append((batch, summary["env_steps"]))
                self._ready_steps += summary["env_steps"]
            while self._ready_steps >= c.train_batch_size:
                logs += self._learn()
        logs += self._finished_updates(wait=False)
        self._last_batches = summaries
        metrics = mean_metrics(logs) if logs else {}
        stale = self._staleness or [0]
        metrics.update({"num_updates": len(logs), "mean_staleness": float(np.mean(stale)),
                        "max_staleness": int(np.max(stale))})
        self._staleness = []
        return {"learners": {"default_policy": metrics},
                "num_batches_dropped_stale": self.num_batches_dropped_stale,
                "num_env_steps_trained_lifetime": self.num_env_steps_trained,
                "weights_version": self.weights_version}

    def _take_train_batch(self) -> list:
        """Fragments from the front of the queue until they hold ``train_batch_size`` steps."""
        out, steps = [], 0
        while self._ready and steps < self.algo_config.train_batch_size:
            batch, n = self._ready.popleft()
            out.append(batch)
            steps += n
        self._ready_steps -= steps
        self.num_env_steps_trained += steps
        return out

    def update_kwargs(self) -> dict:
        """Keyword arguments of each learner update (APPO adds its KL coefficient)."""
        return {}

    def _learn(self) -> list:
        """One update on a training batch; the metrics of the updates that finished."""
        fragments = self._take_train_batch()
        if not self.learner_group.remote:
            batches = [b if isinstance(b, dict) else skate.get(b) for b in fragments]
            result = self.learner_group.local.update_fragments(*batches,
                                                                 **self.update_kwargs())
            self.weights_version += 1
            self._broadcast()
            return [result]
        done = []
        while len(self._updates) >= self.algo_config.learner_queue_size:
            done += self._finished_updates(wait=True, one=True)
        self._updates.append(self.learner_group.update_async(*fragments,
                                                             **self.update_kwargs()))
        self.weights_version += 1
        self._broadcast()
        return done + self._finished_updates(wait=False)

    def _finished_updates(self, wait: bool, one: bool = False) -> list:
        """The metrics of learner updates that are done (waiting for the oldest if
        ``wait``); the module here is brought up to date with the last of them."""
        out = []
        while self._updates:
            calls = self._updates[0]
            if not wait and not all(skate.wait(calls, num_returns=len(calls), timeout=0)[0]):
                break
            out.append(mean_metrics(skate.get(calls)))
            self._updates.popleft()
            wait = wait and not one
        return out

    def sync_module(self) -> None:
        """Wait for the updates sent to learner actors and copy their weights into the
        module here (which checkpoints, evaluation and ``compute_single_action`` use)."""
        if (self.learner_group is not None and self.learner_group.remote
                and self._module_version != self.weights_version):
            self._finished_updates(wait=True)
            self.module.set_state(self.learner_group.get_weights())
            self._module_version = self.weights_version

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.sync_module()
        super().save_checkpoint(checkpoint_dir)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        self._finished_updates(wait=True)
        super().load_checkpoint(checkpoint_dir)
        # new weights everywhere: runners must not keep the version they cached
        self.weights_version += 1
        self._module_version = self.weights_version
        self._pending_weights.clear()
        self._weights = None

    def evaluate(self) -> dict:
        self.sync_module()
        return super().evaluate()

    def compute_single_action(self, observation, explore: bool = False):
        self.sync_module()
        return super().compute_single_action(observation, explore)

    def cleanup(self) -> None:
        self._inflight, self._updates = {}, collections.deque()
        super().cleanup()
