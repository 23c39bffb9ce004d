"""Env runners: gymnasium vector environments stepped with a CPU copy of the policy.

An ``EnvRunner`` is a plain class: the algorithm runs it as an actor (one per
``num_env_runners``) or, with zero runners, in its own process. ``sample``
steps every environment ``T`` times and returns a time-major batch of numpy
arrays plus the episodes that finished. Environments with a vectorized entry point
(CartPole's) reset on the step after an episode ends, a step that is marked
invalid and not trained on; others reset in the same step they end
(``AutoresetMode.SAME_STEP``). Either way a truncated episode's final
observation is valued for bootstrapping. Episodes still running when a
runner dies are simply lost with it: only finished episodes are counted.
"""

from __future__ import annotations

import difflib

import numpy as np

import skate
from skate.rllib.numpy_policy import NumpyPolicy
from skate.rllib.postprocessing import RunningMeanStd

_ENVS: dict = {}  # name -> creator(env_config) (tune.register_env)


def register_env(name: str, creator) -> None:
    """Make ``creator(env_config) -> gymnasium.Env`` available as environment ``name``."""
    if not isinstance(name, str) or not name or not callable(creator):
        raise TypeError("register_env(name, creator) needs a name and a callable")
    _ENVS[name] = creator


def resolve_env(env):
    """A registered name becomes its creator function (to send to other processes)."""
    if isinstance(env, str) and env in _ENVS:
        return _ENVS[env]
    return env


def _creator(env, env_config: dict):
    """A zero-argument env factory for a registered name, a gymnasium id, a class or a
    creator function; unknown ids raise ValueError naming the closest known ones."""
    import gymnasium as gym

    if isinstance(env, str):
        if env in _ENVS:
            return lambda: _ENVS[env](dict(env_config))
        if env not in gym.registry:
            close = difflib.get_close_matches(env, list(gym.registry) + list(_ENVS), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown environment {env!r}: not registered with "
                             f"tune.register_env and not a gymnasium id{hint}")
        return lambda: gym.make(env, **env_config)
    if isinstance(env, type):
        return lambda: env(dict(env_config)) if _takes_config(env) else env()
    if callable(env):
        return lambda: env(dict(env_config))
    raise TypeError(f"env must be a registered name, a gymnasium id, an Env class or a "
                    f"creator function, got {type(env).__name__}")


def _takes_config(cls) -> bool:
    import inspect

    try:
        return len(inspect.signature(cls).parameters) >= 1
    except (TypeError, ValueError):
        return False


def make_vec_env(env, env_config: dict, num_envs: int):
    """A vector env: the env's own vectorized entry point where it has one (CartPole's
    is numpy over all copies, ~2x a loop of single envs), else copies stepped in turn."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    if isinstance(env, str) and env not in _ENVS:
        _creator(env, env_config)  # unknown ids fail here, with close matches
        spec = gym.spec(env)
        if spec.vector_entry_point is not None and num_envs >= 4:  # below 4 copies,
            # stepping single envs in turn is faster than the vectorized numpy
            return gym.make_vec(env, num_envs=num_envs, **env_config)
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                            **env_config)
    make = _creator(env, env_config)
    return SyncVectorEnv([make for _ in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)


def spaces_of(env, env_config: dict):
    """(observation space, action space) of one environment."""
    e = _creator(env, env_config)()
    try:
        return e.observation_space, e.action_space
    finally:
        e.close()


def _identity(x):
    return x


def torch_policy(module, explore: bool, epsilon: float = 0.0) -> tuple:
    """(act, value, env_actions) of ``module`` in torch, over numpy arrays (see
    ``EnvRunner._policy``)."""
    import torch

    forward = module.forward_exploration if explore else module.forward_inference

    def act(obs):
        out = forward({"obs": torch.as_tensor(obs, dtype=torch.float32), "epsilon": epsilon})
        logp, vf = out.get("action_logp"), out.get("vf_preds")
        return (out["actions"].numpy(), None if logp is None else logp.numpy(),
                None if vf is None else vf.numpy())

    def value(obs):
        return module.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    return act, value, lambda actions: module.env_actions(torch.from_numpy(actions))


class EnvRunner:
    """Steps ``num_envs`` environments with the policy it was last sent."""

    def __init__(self, config: dict, worker_index: int = 0, module=None):
        """``module``: step with this module itself (a runner in the algorithm's process
        shares its module: no weights to copy) instead of a copy of its own."""
        import torch

        if not config.get("in_driver"):
            torch.set_num_threads(1)  # an actor: one env runner per core at most
        seed = config.get("seed")
        self.num_envs = int(config["num_envs_per_env_runner"])
        self.env = make_vec_env(config["env"], config["env_config"], self.num_envs)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        make_module = config.get("module_class")
        if make_module is None:
            from skate.rllib.module import RLModule as make_module
        self.module = module if module is not None else \
            make_module(obs_space, act_space, config["model"])
        self.module.clip_actions = config.get("clip_actions", True)
        # only policy-gradient modules value states; Q modules act and that is all
        self.values = hasattr(self.module, "value")
        # a runner's own draws (numpy's, when it steps the policy in numpy; else torch's)
        self.rng = np.random.default_rng(None if seed is None else seed + 1000 * worker_index)
        if seed is not None:
            torch.manual_seed(seed + 1000 * worker_index)
            self.obs, _ = self.env.reset(seed=seed + 1000 * worker_index)
            act_space.seed(seed + worker_index)
        else:
            self.obs, _ = self.env.reset()
        from gymnasium.vector import AutoresetMode

        # NEXT_STEP: the step after an episode's end only resets (its action is ignored);
        # such steps are marked invalid and never trained on
        self.next_step_reset = self.env.metadata.get("autoreset_mode") == AutoresetMode.NEXT_STEP
        self._resetting = np.zeros(self.num_envs, bool)
        self.ep_return = np.zeros(self.num_envs)
        self.ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self.steps_lifetime = 0
        self.filter = (RunningMeanStd(obs_space.shape) if config.get("normalize_observations")
                       else None)
        self.writer = None
        if config.get("output"):  # offline_data(output=...): every sampled step recorded
            from skate.rllib.offline import JsonLinesWriter

            self.writer = JsonLinesWriter(config["output"], worker_index, (obs_space, act_space),
                                          config.get("output_max_rows_per_file") or 100_000)

    def set_weights(self, weights: dict) -> None:
        self.module.set_state(weights)

    def _policy(self, explore: bool, epsilon: float):
        """(act, value, env_actions) over numpy arrays for one batch: ``act(obs)`` is
        (actions, log-probabilities, values), the last two None when not exploring or
        the module values nothing. Numpy steps the module's own weights where that is
        cheaper (see numpy_policy.py), else torch."""
        fast = NumpyPolicy.of(self.module, self.num_envs)
        if fast is not None:
            rng = self.rng
            act = (lambda obs: fast.explore(obs, rng)) if explore else \
                (lambda obs: (fast.greedy(obs), None, None))
            return act, fast.value, fast.env_actions
        return torch_policy(self.module, explore, epsilon)

    def sample(self, weights: dict | None, steps_per_env: int, explore: bool = True,
               epsilon: float = 0.0, obs_filter: dict | None = None) -> dict:
        """``steps_per_env`` steps of every environment; a time-major batch ``[T, N]``.

        With observation normalization, ``obs_filter`` is the algorithm's running
        mean/std (held fixed for the batch, so every step is normalized alike); the
        batch holds normalized observations and, as ``obs_filter_delta``, the
        statistics of the raw ones it saw, for the algorithm to merge."""
        if weights is not None:
            self.module.set_state(weights)
        if obs_filter is not None and self.filter is not None:
            self.filter.set_state(obs_filter)
        norm = self.filter if self.filter is not None else _identity
        T, N = steps_per_env, self.num_envs
        obs_buf = np.zeros((T, N) + self.obs.shape[1:], np.float32)
        act_buf, logp_buf = None, np.zeros((T, N), np.float32)
        vf_buf, rew_buf = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
        term_buf, trunc_buf = np.zeros((T, N), bool), np.zeros((T, N), bool)
        valid_buf = np.ones((T, N), bool)
        next_obs_buf = np.zeros_like(obs_buf)
        raw_buf = np.zeros_like(obs_buf) if self.filter is not None else None
        final_values = {}  # (t, i) -> value of a truncated episode's final observation
        episodes: list = []
        values = explore and self.values
        act, value, env_actions = self._policy(explore, epsilon)
        obs = norm(self.obs)
        for t in range(T):
            actions, logp, vf = act(obs)
            if act_buf is None:
                act_buf = np.zeros((T,) + actions.shape, actions.dtype)
            obs_buf[t], act_buf[t] = obs, actions
            if values:
                logp_buf[t], vf_buf[t] = logp, vf
            raw, rew, term, trunc, info = self.env.step(env_actions(actions))
            if raw_buf is not None:
                raw_buf[t] = raw
            next_obs_buf[t] = obs = norm(raw)
            rew_buf[t], term_buf[t], trunc_buf[t] = rew, term, trunc
            ended = term | trunc
            if self.next_step_reset:
                if self._resetting.any():  # this step only reset those envs
                    real = ~self._resetting
                    valid_buf[t] = real
                    ended &= real
                    self.ep_return += rew * real
                    self.ep_len += real
                else:
                    self.ep_return += rew
                    self.ep_len += 1
                self._resetting = ended  # the final observation came back: value it next step
            else:
                self.ep_return += rew
                self.ep_len += 1
                if ended.any():
                    for i in np.flatnonzero(ended):  # the step's true successor, not the reset
                        next_obs_buf[t, i] = norm(info["final_obs"][i])
                    cut = trunc & ~term
                    if cut.any() and values:
                        idx = np.flatnonzero(cut)
                        for i, v in zip(idx, value(next_obs_buf[t, idx])):
                            final_values[(t, i)] = v
            if ended.any():
                for i in np.flatnonzero(ended):
                    episodes.append((float(self.ep_return[i]), int(self.ep_len[i])))
                    self.ep_return[i], self.ep_len[i] = 0.0, 0
            self.obs = raw
        self.steps_lifetime += int(valid_buf.sum())
        next_values = np.zeros((T, N), np.float32)
        if values:
            last = value(obs)
            next_values[:-1], next_values[-1] = vf_buf[1:], last
            for (t, i), v in final_values.items():
                next_values[t, i] = v
        batch = {"obs": obs_buf, "actions": act_buf, "action_logp": logp_buf,
                 "vf_preds": vf_buf, "rewards": rew_buf, "terminateds": term_buf,
                 "truncateds": trunc_buf, "next_values": next_values, "valid": valid_buf,
                 "next_obs": next_obs_buf,
                 "episodes": episodes, "env_steps": int(valid_buf.sum())}
        if self.writer is not None and explore:
            self.writer.write(batch)
        if raw_buf is not None:
            delta = RunningMeanStd(self.filter.mean.shape)
            delta.update(raw_buf.reshape((-1,) + raw_buf.shape[2:]))
            batch["obs_filter_delta"] = delta.get_state()
        return batch

    @skate.method(num_returns=2)
    def sample_for_learner(self, weights: dict | None, version: int, steps_per_env: int,
                           obs_filter: dict | None = None) -> tuple:
        """(summary, batch) of ``sample`` as two objects, for asynchronous sampling: the
        algorithm reads the small summary (episodes, env steps, the version of the
        weights the batch was sampled with) and hands the batch's ref to a learner, so
        the batch goes from this runner to the learner through the object store.
        ``weights`` are loaded only when ``version`` is new (None: the runner steps the
        algorithm's own module)."""
        if weights is not None and version != getattr(self, "_version", None):
            self.module.set_state(weights)
            self._version = version
        batch = self.sample(None, steps_per_env, obs_filter=obs_filter)
        summary = {"episodes": batch.pop("episodes"), "env_steps": batch.pop("env_steps"),
                   "weights_version": version,
                   "obs_filter_delta": batch.pop("obs_filter_delta", None)}
        return summary, batch

    def run_episodes(self, weights: dict | None, num_episodes: int,
                     obs_filter: dict | None = None) -> list:
        """Greedy episodes for evaluation: [(return, length)]."""
        if weights is not None:
            self.module.set_state(weights)
        done: list = []
        while len(done) < num_episodes:
            done += self.sample(None, 50, explore=False, obs_filter=obs_filter)["episodes"]
        return done[:num_episodes]

    def pid(self) -> int:
        import os

        return os.getpid()

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.env.close()
