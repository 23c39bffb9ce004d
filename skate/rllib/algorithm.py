"""``Algorithm``: the machinery every algorithm shares, as a tune ``Trainable``.

It builds the env runners (actors; zero runners samples in this process),
broadcasts the module's weights once per ``sample`` (one ``put``, every
runner reads the same object), restarts a runner that died (its batch and
its unfinished episodes are dropped, never half-counted), keeps the last 100
episodes for RLlib's ``env_runners/...`` metrics, and writes checkpoints
(``checkpoint.py``). An algorithm fills in ``setup_learner``, ``training_step`` and its learner
state.
"""

from __future__ import annotations

import collections
import math
import os
import time

import numpy as np

import skate
from skate.rllib import checkpoint
from skate.rllib.config import AlgorithmConfig
from skate.rllib.env_runner import EnvRunner, spaces_of
from skate.tune.trainable import Trainable
from skate.util import metrics

DEFAULT_POLICY = "default_policy"


class Algorithm(Trainable):
    """Base of PPO and the others (``config.build()`` makes one)."""

    config_class = AlgorithmConfig
    module_class = None  # the RLModule class (None: the policy + value RLModule)
    learner_class = None  # the Learner subclass whose update() trains (None: the algorithm
    # trains in training_step itself)
    supports_multi_agent = False  # its training_step trains each policy of multi_agent()
    offline = False  # it trains from recorded experience (offline_data(input_=...)) alone

    def __init__(self, config=None, trial_info: dict | None = None, *, env=None, **kwargs):
        if isinstance(config, AlgorithmConfig):
            config = config.to_dict()
        config = dict(config or {})
        if env is not None:
            config["env"] = env
        super().__init__(config, trial_info, **kwargs)

    #: settings tuned per environment id, which ``default_config_for`` starts from
    TUNED: dict = {}

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        return cls.config_class()

    @classmethod
    def default_config_for(cls, env) -> AlgorithmConfig:
        """The config with settings tuned for ``env`` when the algorithm has some
        (``TUNED``), else its defaults.

        >>> from skate.rllib import PPO
        >>> PPO.default_config_for("CartPole-v1").num_envs_per_env_runner
        32
        """
        cfg = cls.config_class().environment(env)
        return cfg.update_from_dict(cls.TUNED.get(env, {})) if isinstance(env, str) else cfg

    # -- set-up ----------------------------------------------------------------------------
    def setup(self, config: dict) -> None:
        import torch

        from skate.rllib.module import RLModule

        known = {k: v for k, v in config.items() if k not in _TUNE_KEYS}
        self.algo_config = c = self.config_class().update_from_dict(known)
        if self.offline and not c.input_:
            raise ValueError(f"{type(self).__name__} trains from recorded experience: give "
                             f"it with config.offline_data(input_=folder)")
        if c.env is None and not self.offline:
            raise ValueError("no environment: call config.environment('CartPole-v1') (a "
                             "gymnasium id, a registered name, an Env class or a creator)")
        if c.env is None and c.evaluation_interval:
            raise ValueError("evaluation runs the policy in its environment: give one with "
                             "config.environment(...)")
        if c.output and (c.is_multi_agent or self._normalizes(c)):
            raise ValueError("offline_data(output=...) records single-agent experience "
                             "without observation normalization")
        if c.num_gpus_per_learner and not torch.cuda.is_available():
            raise ValueError(f"num_gpus_per_learner={c.num_gpus_per_learner} but this machine "
                             f"has no GPU torch can use; set it to 0")
        if c.seed is not None:
            np.random.seed(c.seed)
            torch.manual_seed(c.seed)
        self.torch_rng = torch.Generator()
        self.torch_rng.manual_seed(c.seed if c.seed is not None else
                                   int.from_bytes(os.urandom(4), "little"))
        runners = 0 if self.offline else c.num_env_runners  # offline: nothing to sample
        from skate.rllib.env_runner import resolve_env

        # a registered name travels as its creator: runners are other processes
        self._runner_config = {"env": resolve_env(c.env), "env_config": c.env_config,
                               "num_envs_per_env_runner": c.num_envs_per_env_runner,
                               "seed": c.seed, "module_class": self.module_class,
                               "clip_actions": c.clip_actions,
                               "normalize_observations": self._normalizes(c),
                               "output": c.output,
                               "output_max_rows_per_file": c.output_max_rows_per_file}
        self.model_config = self._runner_config["model"] = self.module_config(c)
        make_module = self.module_class or RLModule
        self.multi_agent = c.is_multi_agent
        if self.multi_agent:  # one module per policy (see multi_agent_runner.py)
            from skate.rllib.multi_agent_runner import MultiAgentEnvRunner, policy_spaces

            if not self.supports_multi_agent:
                raise ValueError(f"{type(self).__name__} trains one policy here; multi_agent() "
                                 f"configs train with PPO")
            if self._normalizes(c):
                raise ValueError("observation normalization is not supported with "
                                 "multi_agent(); normalize inside the environment")
            spaces = policy_spaces(c.env, c.env_config, c.policies, c.mapping_fn())
            self._runner_config.update(policy_spaces=spaces, policy_mapping_fn=c.mapping_fn())
            self.runner_class = MultiAgentEnvRunner
            trained = c.policies_to_train or sorted(spaces)
        else:
            if c.env is None:  # an offline algorithm: the recording says what the spaces are
                from skate.rllib.offline import read_spaces

                spaces = {DEFAULT_POLICY: read_spaces(c.input_)}
            else:
                spaces = {DEFAULT_POLICY: spaces_of(c.env, c.env_config)}
            self.runner_class = EnvRunner
            trained = [DEFAULT_POLICY]
        self.modules = {pid: make_module(obs, act, self.model_config)
                        for pid, (obs, act) in spaces.items()}
        self.module = self.modules.get(DEFAULT_POLICY)  # one policy's: the usual case
        self._spaces = spaces.get(DEFAULT_POLICY)
        import logging

        logging.getLogger("skate.rllib").setLevel(str(c.log_level).upper())
        self._runner_cls = skate.remote(self.runner_class) if runners else None
        self.runners = [self._start_runner(i + 1) for i in range(runners)]
        self.eval_runners = [self._start_runner(10_000 + i)
                             for i in range(c.evaluation_num_env_runners)]
        from skate.rllib.postprocessing import RunningMeanStd

        self.obs_filter = (RunningMeanStd(self._spaces[0].shape) if self._normalizes(c)
                           else None)
        self.local_runner = None
        if not runners and not self.offline:  # it steps with this process's modules
            shared = {"modules": self.modules} if self.multi_agent else {"module": self.module}
            self.local_runner = self.runner_class({**self._runner_config, "in_driver": True},
                                                  0, **shared)
        self._episodes: collections.deque = collections.deque(maxlen=100)
        self._module_episodes: collections.deque = collections.deque(maxlen=100)
        self.steps_lifetime = 0
        self.episodes_lifetime = 0
        self.num_runner_restarts = 0
        self._failures_in_a_row = 0
        self.restarted_runners: set = set()
        self._explore: dict = {}
        self.learner_groups: dict = {}
        if self.learner_class is not None:
            from skate.rllib.learner import LearnerGroup

            self.learner_groups = {pid: LearnerGroup(self.learner_class, {
                "config": c, "spaces": spaces[pid], "model": self.model_config,
                "module_class": self.module_class, "module": self.modules[pid]})
                for pid in trained}
        self.learner_group = self.learner_groups.get(DEFAULT_POLICY)
        self.setup_learner()

    def _start_runner(self, index: int):
        c = self.algo_config
        cls = self._runner_cls or skate.remote(self.runner_class)
        return cls.options(num_cpus=c.num_cpus_per_env_runner,
                           num_gpus=c.num_gpus_per_env_runner).remote(self._runner_config, index)

    @staticmethod
    def _normalizes(c) -> bool:
        return bool(c.normalize_observations) or c.observation_filter == "MeanStdFilter"

    def _filter_state(self):
        return self.obs_filter.get_state() if self.obs_filter is not None else None

    # -- what an algorithm fills in --------------------------------------------------------
    def module_config(self, c) -> dict:
        """The model settings every copy of the module is built from."""
        return dict(c.model)

    def setup_learner(self) -> None:
        """Build the learner state (optimizer, ...): every algorithm defines it."""
        raise NotImplementedError(f"{type(self).__name__} is an Algorithm without "
                                  f"setup_learner(); subclass PPO or DQN, or define it")

    def training_step(self) -> dict:
        """One iteration's sampling and learning: every algorithm defines it."""
        raise NotImplementedError(f"{type(self).__name__} is an Algorithm without "
                                  f"training_step(); subclass PPO or DQN, or define it")

    def learn(self, batch: dict, policy: str = DEFAULT_POLICY, **kwargs) -> list:
        """``policy``'s learner group trains on ``batch``; its module here gets the new
        weights. Returns each learner's result."""
        group = self.learner_groups[policy]
        results = group.update(batch, **kwargs)
        if group.remote:
            self.modules[policy].set_state(group.get_weights())
        return results

    def get_weights(self) -> dict:
        """The weights runners step with: the module's, or ``{policy id: weights}``."""
        if self.multi_agent:
            return {pid: m.get_state() for pid, m in self.modules.items()}
        return self.module.get_state()

    def learner_state(self) -> dict:
        return {}

    def set_learner_state(self, state: dict) -> None:
        pass

    # -- sampling ----------------------------------------------------------------------------
    def sample(self, total_steps: int, **explore) -> list:
        """Batches of about ``total_steps`` env steps from all runners, current weights
        (``explore``: passed to the runners, e.g. ``epsilon=`` for Q-learning)."""
        c = self.algo_config
        n = max(1, len(self.runners)) * c.num_envs_per_env_runner
        frag = c.rollout_fragment_length
        T = math.ceil(total_steps / n) if frag == "auto" else int(frag)
        explore = {**explore, "obs_filter": self._filter_state()}
        self._explore = explore
        if self.local_runner is not None:  # it steps with self.module itself
            batches = [self.local_runner.sample(None, T, **explore)]
        else:
            ref = skate.put(self.get_weights())
            batches = self._gather([(i, r.sample.remote(ref, T, **explore))
                                    for i, r in enumerate(self.runners)])
        for i, b in enumerate(batches):
            b.setdefault("runner", i)
            self.record_batch(b)
        self._last_batches = batches
        return batches

    def record_batch(self, b: dict) -> None:
        """Count a sampled batch (or a batch's summary): its finished episodes and env
        steps, and the raw observations' statistics into the observation filter."""
        delta = b.pop("obs_filter_delta", None)
        if self.obs_filter is not None and delta is not None:  # every runner's, merged
            self.obs_filter.merge(delta)
        self._episodes.extend(b["episodes"])
        self._module_episodes.extend(zip(b.get("module_episodes", ()),
                                         b.get("agent_episodes", ())))
        self.episodes_lifetime += len(b["episodes"])
        self.steps_lifetime += b["env_steps"]

    def _gather(self, pending: list) -> list:
        from skate.exceptions import RayActorError

        out = []
        for i, ref in pending:
            try:
                batch = skate.get(ref, timeout=self.algo_config.sample_timeout_s)
                batch["runner"] = i
                out.append(batch)
            except RayActorError as e:
                self.replace_failed_runner(i, e)
                continue
            self._failures_in_a_row = 0
        if not out:  # every runner died this round: sample again with the new ones
            return self.sample_again()
        return out

    def replace_failed_runner(self, i: int, error: Exception) -> None:
        """Start a new env runner in place of runner ``i``, which died with ``error`` (its
        batch and unfinished episodes are lost); RuntimeError when the config says not
        to, or when runners keep dying."""
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= 3 * max(1, len(self.runners)):
            raise RuntimeError(f"env runners keep failing before sampling anything; "
                               f"the last error: {error}") from None
        if not self.algo_config.restart_failed_env_runners:
            raise RuntimeError(f"env runner {i + 1} died ({error}); set "
                               f"fault_tolerance(restart_failed_env_runners=True) "
                               f"to replace it") from None
        self.num_runner_restarts += 1
        if self.num_runner_restarts > self.algo_config.max_num_env_runner_restarts:
            raise RuntimeError("env runners keep dying; giving up") from None
        self.runners[i] = self._start_runner(i + 1)
        self.restarted_runners.add(i)  # its unfinished episodes are gone

    def sample_again(self) -> list:
        weights = skate.put(self.get_weights())
        c = self.algo_config
        n = len(self.runners) * c.num_envs_per_env_runner
        T = math.ceil(c.train_batch_size / n)
        return self._gather([(i, r.sample.remote(weights, T, **self._explore))
                             for i, r in enumerate(self.runners)])

    # -- one iteration -------------------------------------------------------------------------
    def step(self) -> dict:
        t0 = time.perf_counter()
        self._sample_time = 0.0
        result = self.training_step()
        eps = list(self._episodes)
        batches = getattr(self, "_last_batches", [])
        returns = [r for r, _ in eps]
        env_runners = {
            "episode_return_mean": float(np.mean(returns)) if returns else float("nan"),
            "episode_return_max": float(np.max(returns)) if returns else float("nan"),
            "episode_return_min": float(np.min(returns)) if returns else float("nan"),
            "episode_len_mean": float(np.mean([n for _, n in eps])) if eps else float("nan"),
            "num_episodes": sum(len(b["episodes"]) for b in batches),
            "num_env_steps_sampled": sum(b["env_steps"] for b in batches),
            "num_episodes_lifetime": self.episodes_lifetime,
        }
        if self.multi_agent:  # RLlib's per-module and per-agent returns
            env_runners["module_episode_returns_mean"] = _means(m for m, _ in
                                                                self._module_episodes)
            env_runners["agent_episode_returns_mean"] = _means(a for _, a in
                                                               self._module_episodes)
        took = time.perf_counter() - t0
        result.update({
            "env_runners": env_runners,
            "num_env_steps_sampled_lifetime": self.steps_lifetime,
            "num_env_runner_restarts": self.num_runner_restarts,
            "timers": {"training_iteration": took},
            "env_steps_per_s": env_runners["num_env_steps_sampled"] / took if took else 0.0,
        })
        self._report_metrics(result, env_runners)
        interval = self.algo_config.evaluation_interval
        if interval and (self.iteration + 1) % interval == 0:  # iteration: before this one
            result["evaluation"] = self.evaluate()
        # Tune names nested metrics with "/" ("env_runners/episode_return_mean"): both forms
        result.update(_flat(result))
        return result

    def _report_metrics(self, result: dict, env_runners: dict) -> None:
        """The iteration's env steps/s and returns as metrics, tagged with the algorithm."""
        m = getattr(self, "_metrics", None)
        if m is None:
            tags = {"algorithm": type(self).__name__}
            m = self._metrics = (
                metrics.Counter("rllib_env_steps_sampled", "Env steps sampled.",
                                ("algorithm",)).set_default_tags(tags),
                metrics.Gauge("rllib_env_steps_per_s", "Env steps per second, last iteration.",
                              ("algorithm",)).set_default_tags(tags),
                metrics.Gauge("rllib_episode_return_mean", "Mean return of recent episodes.",
                              ("algorithm",)).set_default_tags(tags))
        steps, speed, returns = m
        if env_runners["num_env_steps_sampled"]:
            steps.inc(env_runners["num_env_steps_sampled"])
        speed.set(result["env_steps_per_s"])
        if env_runners["episode_return_mean"] == env_runners["episode_return_mean"]:  # not NaN
            returns.set(env_runners["episode_return_mean"])

    # -- checkpoints (the format: skate/rllib/checkpoint.py) ------------------------------------
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        checkpoint.save(self, checkpoint_dir)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        checkpoint.load(self, checkpoint_dir)

    @classmethod
    def from_checkpoint(cls, path: str, env=None) -> "Algorithm":
        """The algorithm saved in ``path`` (``env`` again if it was a class or function)."""
        algo_cls, config = checkpoint.algorithm_and_config(path, env)
        algo = algo_cls(config=config)
        algo.restore(path)
        return algo

    # -- using the policy -----------------------------------------------------------------------
    def get_module(self, module_id: str = DEFAULT_POLICY):
        """The RLModule of ``module_id`` (a policy id; one policy: ``"default_policy"``)."""
        if module_id not in self.modules:
            raise KeyError(f"no module {module_id!r}; this algorithm's modules: "
                           f"{', '.join(map(repr, self.modules))}")
        return self.modules[module_id]

    def compute_single_action(self, observation, explore: bool = False,
                              policy_id: str = DEFAULT_POLICY):
        import torch

        module = self.get_module(policy_id)
        obs = np.asarray(observation, np.float32)[None]
        if self.obs_filter is not None:
            obs = self.obs_filter(obs)
        obs = torch.as_tensor(obs)
        out = (module.forward_exploration if explore else
               module.forward_inference)({"obs": obs})
        return module.env_actions(out["actions"])[0]

    def evaluate(self) -> dict:
        """Greedy episodes (``evaluation_duration`` of them) with the current weights, on
        the ``evaluation_num_env_runners`` evaluation runners (split between them) or, with
        none, in this process. A runner that dies is replaced and its share run again."""
        from skate.exceptions import RayActorError

        total = int(self.algo_config.evaluation_duration)
        weights, filt = self.get_weights(), self._filter_state()
        if not self.eval_runners:
            runner = self.runner_class({**self._runner_config, "num_envs_per_env_runner": 1,
                                "in_driver": True}, 999)
            try:
                eps = runner.run_episodes(weights, total, filt)
            finally:
                runner.stop()
        else:
            k = len(self.eval_runners)
            shares = [total // k + (1 if i < total % k else 0) for i in range(k)]
            ref = skate.put(weights)
            eps = []
            for attempt in range(3):
                pending = [(i, r.run_episodes.remote(ref, n, filt))
                           for i, (r, n) in enumerate(zip(self.eval_runners, shares)) if n]
                failed = []
                for i, call in pending:
                    try:
                        eps += skate.get(call, timeout=self.algo_config.sample_timeout_s * 10)
                    except RayActorError:
                        self.eval_runners[i] = self._start_runner(10_000 + i)
                        failed.append(i)
                shares = [n if i in failed else 0 for i, n in enumerate(shares)]
                if not failed:
                    break
            else:
                raise RuntimeError("evaluation env runners keep dying; giving up")
        returns = [r for r, _ in eps]
        return {"env_runners": {"episode_return_mean": float(np.mean(returns)),
                                "episode_return_max": float(np.max(returns)),
                                "episode_return_min": float(np.min(returns)),
                                "episode_len_mean": float(np.mean([n for _, n in eps])),
                                "num_episodes": len(eps)}}

    def cleanup(self) -> None:
        for group in getattr(self, "learner_groups", {}).values():
            group.stop()
        for r in getattr(self, "runners", []) + getattr(self, "eval_runners", []):
            try:
                skate.kill(r)
            except Exception:
                pass
        self.runners, self.eval_runners = [], []

    def stop(self) -> None:
        """Stop the env runners."""
        self.cleanup()


_TUNE_KEYS = frozenset({"__trial_info__"})


def _means(dicts) -> dict:
    """The mean of each key over the dicts that have it."""
    seen: dict = {}
    for d in dicts:
        for k, v in d.items():
            seen.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in sorted(seen.items(), key=lambda kv: str(kv[0]))}


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            for kk, vv in _flat(v, f"{prefix}{k}/").items():
                out[kk] = vv
        elif prefix:
            out[f"{prefix}{k}"] = v
    return out

