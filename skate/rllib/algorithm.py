"""``Algorithm``: the machinery every algorithm shares, as a tune ``Trainable``.

It builds the env runners (actors; zero runners samples in this process),
broadcasts the module's weights once per ``sample`` (one ``put``, every
runner reads the same object), restarts a runner that died (its batch and
its unfinished episodes are dropped, never half-counted), keeps the last 100
episodes for RLlib's ``env_runners/...`` metrics, and writes checkpoints: a
folder with ``algorithm_state.json`` (format version, algorithm, config),
``module.pt`` (the torch state dict) and ``learner.pt`` (optimizer state).
An algorithm fills in ``setup_learner``, ``training_step`` and its learner
state.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time

import numpy as np

import skate
from skate.rllib.config import AlgorithmConfig
from skate.rllib.env_runner import EnvRunner, spaces_of
from skate.tune.trainable import Trainable
from skate.util import metrics

CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: separate policy/value nets, optimizer with the algorithm
STATE_FILE = "algorithm_state.json"


class Algorithm(Trainable):
    """Base of PPO and the others (``config.build()`` makes one)."""

    config_class = AlgorithmConfig
    module_class = None  # the RLModule class (None: the policy + value RLModule)
    learner_class = None  # the Learner subclass whose update() trains (None: the algorithm
    # trains in training_step itself)

    def __init__(self, config=None, trial_info: dict | None = None, *, env=None, **kwargs):
        if isinstance(config, AlgorithmConfig):
            config = config.to_dict()
        config = dict(config or {})
        if env is not None:
            config["env"] = env
        super().__init__(config, trial_info, **kwargs)

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        return cls.config_class()

    # -- set-up ----------------------------------------------------------------------------
    def setup(self, config: dict) -> None:
        import torch

        from skate.rllib.module import RLModule

        known = {k: v for k, v in config.items() if k not in _TUNE_KEYS}
        self.algo_config = c = self.config_class().update_from_dict(known)
        if c.env is None:
            raise ValueError("no environment: call config.environment('CartPole-v1') (a "
                             "gymnasium id, a registered name, an Env class or a creator)")
        if c.num_gpus_per_learner and not torch.cuda.is_available():
            raise ValueError(f"num_gpus_per_learner={c.num_gpus_per_learner} but this machine "
                             f"has no GPU torch can use; set it to 0")
        if c.seed is not None:
            np.random.seed(c.seed)
            torch.manual_seed(c.seed)
        self.torch_rng = torch.Generator()
        self.torch_rng.manual_seed(c.seed if c.seed is not None else
                                   int.from_bytes(os.urandom(4), "little"))
        obs_space, act_space = spaces_of(c.env, c.env_config)
        self.model_config = self.module_config(c)
        self.module = (self.module_class or RLModule)(obs_space, act_space, self.model_config)
        runners = c.num_env_runners
        from skate.rllib.env_runner import resolve_env

        # a registered name travels as its creator: runners are other processes
        self._runner_config = {"env": resolve_env(c.env), "env_config": c.env_config,
                               "model": self.model_config,
                               "num_envs_per_env_runner": c.num_envs_per_env_runner,
                               "seed": c.seed, "module_class": self.module_class,
                               "clip_actions": c.clip_actions,
                               "normalize_observations": self._normalizes(c)}
        self._spaces = (obs_space, act_space)
        import logging

        logging.getLogger("skate.rllib").setLevel(str(c.log_level).upper())
        self._runner_cls = skate.remote(EnvRunner) if runners else None
        self.runners = [self._start_runner(i + 1) for i in range(runners)]
        self.eval_runners = [self._start_runner(10_000 + i)
                             for i in range(c.evaluation_num_env_runners)]
        from skate.rllib.postprocessing import RunningMeanStd

        self.obs_filter = RunningMeanStd(obs_space.shape) if self._normalizes(c) else None
        self.local_runner = (EnvRunner({**self._runner_config, "in_driver": True}, 0,
                                       module=self.module) if not runners else None)
        self._episodes: collections.deque = collections.deque(maxlen=100)
        self.steps_lifetime = 0
        self.episodes_lifetime = 0
        self.num_runner_restarts = 0
        self._failures_in_a_row = 0
        self.restarted_runners: set = set()
        self._explore: dict = {}
        self.learner_group = None
        if self.learner_class is not None:
            from skate.rllib.learner import LearnerGroup

            self.learner_group = LearnerGroup(self.learner_class, {
                "config": c, "spaces": (obs_space, act_space), "model": self.model_config,
                "module_class": self.module_class, "module": self.module})
        self.setup_learner()

    def _start_runner(self, index: int):
        c = self.algo_config
        cls = self._runner_cls or skate.remote(EnvRunner)
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

    def learn(self, batch: dict, **kwargs) -> list:
        """The learner group trains on ``batch``; the module here gets the new weights.
        Returns each learner's result."""
        results = self.learner_group.update(batch, **kwargs)
        if self.learner_group.remote:
            self.module.set_state(self.learner_group.get_weights())
        return results

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
            ref = skate.put(self.module.get_state())
            batches = self._gather([(i, r.sample.remote(ref, T, **explore))
                                    for i, r in enumerate(self.runners)])
        for i, b in enumerate(batches):
            b.setdefault("runner", i)
            if self.obs_filter is not None:  # every runner's raw observations, merged
                self.obs_filter.merge(b.pop("obs_filter_delta"))
            self._episodes.extend(b["episodes"])
            self.episodes_lifetime += len(b["episodes"])
            self.steps_lifetime += b["env_steps"]
        self._last_batches = batches
        return batches

    def _gather(self, pending: list) -> list:
        from skate.exceptions import RayActorError

        out = []
        for i, ref in pending:
            try:
                batch = skate.get(ref, timeout=self.algo_config.sample_timeout_s)
                batch["runner"] = i
                out.append(batch)
            except RayActorError as e:
                self._failures_in_a_row += 1
                if self._failures_in_a_row >= 3 * max(1, len(self.runners)):
                    raise RuntimeError(f"env runners keep failing before sampling anything; "
                                       f"the last error: {e}") from None
                if not self.algo_config.restart_failed_env_runners:
                    raise RuntimeError(f"env runner {i + 1} died ({e}); set "
                                       f"fault_tolerance(restart_failed_env_runners=True) "
                                       f"to replace it") from None
                self.num_runner_restarts += 1
                if self.num_runner_restarts > self.algo_config.max_num_env_runner_restarts:
                    raise RuntimeError("env runners keep dying; giving up") from None
                self.runners[i] = self._start_runner(i + 1)
                self.restarted_runners.add(i)  # its unfinished episodes are gone
                continue
            self._failures_in_a_row = 0
        if not out:  # every runner died this round: sample again with the new ones
            return self.sample_again()
        return out

    def sample_again(self) -> list:
        weights = skate.put(self.module.get_state())
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

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        import torch

        state = {"format_version": CHECKPOINT_FORMAT, "algorithm": type(self).__name__,
                 "config": json.loads(self.algo_config.to_json()),
                 "steps_lifetime": self.steps_lifetime,
                 "episodes_lifetime": self.episodes_lifetime,
                 "episodes": list(self._episodes), "obs_filter": self._filter_state()}
        if not isinstance(self.algo_config.env, str):
            state["config"]["env"] = None  # a class or function: given again when restoring
        with open(os.path.join(checkpoint_dir, STATE_FILE), "w") as f:
            json.dump(state, f, indent=1)
        torch.save(self.module.state_dict(), os.path.join(checkpoint_dir, "module.pt"))
        learner = {"algorithm": self.learner_state()}
        if self.learner_group is not None:
            learner["learner"] = self.learner_group.get_state()
        torch.save(learner, os.path.join(checkpoint_dir, "learner.pt"))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        import torch

        state = read_state(checkpoint_dir)
        if state["algorithm"] != type(self).__name__:
            raise ValueError(f"{checkpoint_dir} holds a {state['algorithm']} checkpoint, not "
                             f"{type(self).__name__}")
        from skate.rllib.module import upgrade_state_v1

        weights = torch.load(os.path.join(checkpoint_dir, "module.pt"))
        learner = torch.load(os.path.join(checkpoint_dir, "learner.pt"), weights_only=False)
        if state["format_version"] == 1:
            # format 1 kept the policy and value nets apart and saved the optimizer with the
            # algorithm's state; the weights carry over, the optimizer starts afresh
            weights = upgrade_state_v1(weights)
            learner = {"algorithm": {k: v for k, v in learner.items()
                                     if k not in ("optimizer", "target")},
                       "learner": {"optimizer": None, "target": learner.get("target")}}
        self.module.load_state_dict(weights)
        self.set_learner_state(learner["algorithm"])
        if self.learner_group is not None:
            self.learner_group.set_state(learner["learner"], self.module.get_state())
        self.steps_lifetime = state["steps_lifetime"]
        self.episodes_lifetime = state["episodes_lifetime"]
        self._episodes.extend(tuple(e) for e in state["episodes"])
        if self.obs_filter is not None and state.get("obs_filter"):
            self.obs_filter.set_state(state["obs_filter"])

    @classmethod
    def from_checkpoint(cls, path: str, env=None) -> "Algorithm":
        """The algorithm saved in ``path`` (``env`` again if it was a class or function)."""
        from skate.rllib.registry import algorithm_class

        state = read_state(path)
        algo_cls = algorithm_class(state["algorithm"])
        config = dict(state["config"])
        if env is not None:
            config["env"] = env
        algo = algo_cls(config=config)
        algo.restore(path)
        return algo

    # -- using the policy -----------------------------------------------------------------------
    def get_module(self, module_id: str = "default_policy"):
        return self.module

    def compute_single_action(self, observation, explore: bool = False):
        import torch

        obs = np.asarray(observation, np.float32)[None]
        if self.obs_filter is not None:
            obs = self.obs_filter(obs)
        obs = torch.as_tensor(obs)
        out = (self.module.forward_exploration if explore else
               self.module.forward_inference)({"obs": obs})
        return self.module.env_actions(out["actions"])[0]

    def evaluate(self) -> dict:
        """Greedy episodes (``evaluation_duration`` of them) with the current weights, on
        the ``evaluation_num_env_runners`` evaluation runners (split between them) or, with
        none, in this process. A runner that dies is replaced and its share run again."""
        from skate.exceptions import RayActorError

        total = int(self.algo_config.evaluation_duration)
        weights, filt = self.module.get_state(), self._filter_state()
        if not self.eval_runners:
            runner = EnvRunner({**self._runner_config, "num_envs_per_env_runner": 1,
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
        if getattr(self, "learner_group", None) is not None:
            self.learner_group.stop()
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


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            for kk, vv in _flat(v, f"{prefix}{k}/").items():
                out[kk] = vv
        elif prefix:
            out[f"{prefix}{k}"] = v
    return out


def read_state(path: str) -> dict:
    """The checkpoint's ``algorithm_state.json``, or an error saying what the folder is."""
    file = os.path.join(path, STATE_FILE)
    if not os.path.exists(file):
        raise ValueError(f"{path} is not an rllib checkpoint (no {STATE_FILE})")
    with open(file) as f:
        state = json.load(f)
    version = state.get("format_version")
    if version not in READABLE_FORMATS:
        raise ValueError(f"{path} is an rllib checkpoint of format {version}; this Skate "
                         f"reads formats {', '.join(map(str, READABLE_FORMATS))}. Load it with "
                         f"the Skate version that wrote it and save it again with this one.")
    return state
