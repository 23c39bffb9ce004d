"""``AlgorithmConfig``: RLlib's builder, with every setting checked where it is given.

Each builder method takes keyword arguments only, returns the config (so
calls chain) and rejects a name it does not know, listing the valid ones —
a typo never silently does nothing. ``to_dict`` / ``from_dict`` carry a
config through Tune (``tune.grid_search`` values inside are resolved there)
and into checkpoints.
"""

from __future__ import annotations

import copy
import json
import os

SECTIONS = {
    "environment": {"env": None, "env_config": {}, "clip_actions": True,
                    "normalize_observations": False},
    "env_runners": {"num_env_runners": 2, "num_envs_per_env_runner": 1,
                    "rollout_fragment_length": "auto", "sample_timeout_s": 60.0,
                    "observation_filter": "NoFilter", "num_cpus_per_env_runner": 0,
                    "num_gpus_per_env_runner": 0},
    "training": {"lr": 5e-5, "gamma": 0.99, "train_batch_size": 4000, "model": {},
                 "grad_clip": None},
    "learners": {"num_learners": 0, "num_gpus_per_learner": 0, "num_cpus_per_learner": 0},
    "evaluation": {"evaluation_interval": None, "evaluation_duration": 10,
                   "evaluation_duration_unit": "episodes", "evaluation_num_env_runners": 0},
    "debugging": {"seed": None, "log_level": "WARN"},
    "fault_tolerance": {"restart_failed_env_runners": True,
                        "max_num_env_runner_restarts": 1000},
    "framework": {"framework": "torch"},
    "multi_agent": {"policies": None, "policy_mapping_fn": None, "policies_to_train": None},
    "offline_data": {"input_": None, "output": None, "output_max_rows_per_file": 100_000,
                     "dataset_num_iters_per_learner": None},
}


ACTIVATION_NAMES = ("elu", "linear", "relu", "silu", "tanh")  # module.ACTIVATIONS' keys


def check_model(model, observation_space=None, action_space=None) -> None:
    """The ``model`` settings and the env's spaces are ones the modules can be built from
    (ValueError/TypeError saying what is wrong), checked without building one -- so
    without importing torch.

    >>> check_model({"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"})
    >>> check_model({"fcnet_activation": "tahn"})
    Traceback (most recent call last):
    ...
    ValueError: model: fcnet_activation 'tahn' is not one of elu, linear, relu, silu, tanh
    """
    if not isinstance(model, dict):
        raise TypeError(f"model must be a dict of settings, got {type(model).__name__}")
    hiddens = model.get("fcnet_hiddens", [256, 256])
    if not isinstance(hiddens, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hiddens):
        raise ValueError(f"model: fcnet_hiddens must be a list of positive layer sizes, got "
                         f"{hiddens!r}")
    activation = model.get("fcnet_activation", "tanh")
    if activation not in ACTIVATION_NAMES:
        raise ValueError(f"model: fcnet_activation {activation!r} is not one of "
                         f"{', '.join(ACTIVATION_NAMES)}")
    if observation_space is None:
        return
    import gymnasium as gym

    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"observations must be a Box space (got {observation_space}); "
                         f"wrap the environment to flatten them")
    if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise ValueError(f"actions must be Discrete or Box (got {action_space})")


class AlgorithmConfig:
    """Settings of one algorithm; subclasses add their training options.

    >>> from skate.rllib import PPOConfig
    >>> cfg = PPOConfig().environment("CartPole-v1").training(lr=1e-3, num_epochs=5)
    >>> cfg.lr, cfg.num_epochs, cfg.env
    (0.001, 5, 'CartPole-v1')
    >>> PPOConfig().training(learning_rate=1)
    Traceback (most recent call last):
    ...
    TypeError: training() got an unknown setting 'learning_rate'; valid settings: ...
    """

    algo_class = None  # set by each algorithm's module
    TRAINING_EXTRA: dict = {}

    def __init__(self, algo_class=None):
        if algo_class is not None:
            self.algo_class = algo_class
        self._values: dict = {}
        for section, defaults in self._sections().items():
            for k, v in defaults.items():
                self._values[k] = copy.deepcopy(v)

    def _sections(self) -> dict:
        out = copy.deepcopy(SECTIONS)
        out["training"].update(copy.deepcopy(self.TRAINING_EXTRA))
        return out

    def _set(self, section: str, kwargs: dict) -> "AlgorithmConfig":
        valid = self._sections()[section]
        for k, v in kwargs.items():
            if k == "lambda_":  # `lambda` is a Python keyword
                k = "lambda"
            if k not in valid:
                raise TypeError(f"{section}() got an unknown setting {k!r}; valid settings: "
                                f"{', '.join(sorted(valid))}")
            self._values[k] = v
        return self

    def environment(self, env=None, **kwargs) -> "AlgorithmConfig":
        if env is not None:
            kwargs["env"] = env
        return self._set("environment", kwargs)

    def env_runners(self, **kwargs) -> "AlgorithmConfig":
        n = kwargs.get("num_env_runners")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ValueError(f"num_env_runners must be an int >= 0, got {n!r}")
        f = kwargs.get("observation_filter")
        if f is not None and f not in ("NoFilter", "MeanStdFilter"):
            raise ValueError(f"observation_filter must be 'NoFilter' or 'MeanStdFilter', "
                             f"got {f!r}")
        return self._set("env_runners", kwargs)

    rollouts = env_runners  # RLlib's old name

    def training(self, **kwargs) -> "AlgorithmConfig":
        return self._set("training", kwargs)

    def learners(self, **kwargs) -> "AlgorithmConfig":
        for k in ("num_learners", "num_gpus_per_learner"):
            v = kwargs.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or v < 0):
                raise ValueError(f"{k} must be a number >= 0, got {v!r}")
        return self._set("learners", kwargs)

    def evaluation(self, **kwargs) -> "AlgorithmConfig":
        v = kwargs.get("evaluation_interval")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"evaluation_interval must be None or an int >= 0 (every how "
                             f"many train() calls), got {v!r}")
        for k in ("evaluation_num_env_runners", "evaluation_duration"):
            v = kwargs.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{k} must be an int >= 0, got {v!r}")
        if kwargs.get("evaluation_duration_unit", "episodes") != "episodes":
            raise ValueError("evaluation_duration_unit: only 'episodes' is supported")
        return self._set("evaluation", kwargs)

    def debugging(self, **kwargs) -> "AlgorithmConfig":
        return self._set("debugging", kwargs)

    def fault_tolerance(self, **kwargs) -> "AlgorithmConfig":
        return self._set("fault_tolerance", kwargs)

    def multi_agent(self, *, policies=None, policy_mapping_fn=None, policies_to_train=None,
                    **ignored) -> "AlgorithmConfig":
        """Several agents, each trained by the policy ``policy_mapping_fn(agent_id,
        episode)`` names: ``policies`` is a set of ids or ``{id: PolicySpec() or None}``;
        ``policies_to_train`` (default: all) are trained, the others only act.

        >>> from skate.rllib import PPOConfig
        >>> cfg = PPOConfig().multi_agent(policies={"a", "b"},
        ...                               policy_mapping_fn=lambda aid, ep, **kw: aid)
        >>> sorted(cfg.policies), cfg.is_multi_agent
        (['a', 'b'], True)
        """
        unknown = set(ignored) - {"count_steps_by", "policy_map_capacity"}
        if unknown:
            raise TypeError(f"multi_agent() got an unknown setting {sorted(unknown)[0]!r}; "
                            f"valid settings: policies, policy_mapping_fn, policies_to_train")
        if policies is not None:
            if isinstance(policies, (set, frozenset, list, tuple)):
                policies = {pid: None for pid in policies}
            if not isinstance(policies, dict) or not policies or \
                    not all(isinstance(k, str) for k in policies):
                raise ValueError(f"policies must be a non-empty set of policy ids (strings) or "
                                 f"a dict of id -> PolicySpec, got {policies!r}")
            self._values["policies"] = policies
        if policy_mapping_fn is not None:
            if not callable(policy_mapping_fn):
                raise TypeError("policy_mapping_fn must be callable (agent_id, episode, "
                                "**kwargs) -> policy id")
            self._values["policy_mapping_fn"] = policy_mapping_fn
        if policies_to_train is not None:
            if callable(policies_to_train) or isinstance(policies_to_train, str):
                raise TypeError("policies_to_train must be a list or set of policy ids")
            self._values["policies_to_train"] = sorted(policies_to_train)
        pols, train = self._values["policies"], self._values["policies_to_train"]
        if pols is not None and train is not None and set(train) - set(pols):
            raise ValueError(f"policies_to_train names {sorted(set(train) - set(pols))}, "
                             f"which are not in policies {sorted(pols)}")
        return self

    def offline_data(self, **kwargs) -> "AlgorithmConfig":
        """Where experience is recorded (``output``: a folder every env runner writes JSON
        lines to) or read from (``input_``: such a folder, for BC and MARWIL); see
        skate/rllib/offline.py for the format.

        >>> from skate.rllib import PPOConfig
        >>> PPOConfig().offline_data(output="/tmp/cartpole-steps").output
        '/tmp/cartpole-steps'
        """
        if "input" in kwargs:
            kwargs["input_"] = kwargs.pop("input")
        for k in ("input_", "output"):
            v = kwargs.get(k)
            if v is not None and not isinstance(v, (str, os.PathLike)):
                raise TypeError(f"offline_data({k}=...) takes a folder path, got "
                                f"{type(v).__name__}")
            if v is not None:
                kwargs[k] = os.fspath(v)
        n = kwargs.get("output_max_rows_per_file")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"output_max_rows_per_file must be an int >= 1, got {n!r}")
        return self._set("offline_data", kwargs)

    @property
    def is_multi_agent(self) -> bool:
        return self._values["policies"] is not None

    def mapping_fn(self):
        """The policy mapping function (every agent to the only policy when none is set)."""
        fn, policies = self._values["policy_mapping_fn"], self._values["policies"]
        if fn is None:
            if len(policies) > 1:
                raise ValueError("several policies need a policy_mapping_fn(agent_id, episode) "
                                 "saying which policy each agent uses")
            only = next(iter(policies))
            return lambda agent_id, episode, **kw: only
        return fn

    def framework(self, framework: str = "torch", **_ignored) -> "AlgorithmConfig":
        if framework != "torch":
            raise ValueError(f"framework {framework!r} is not supported; Skate's rllib uses "
                             f"torch")
        return self._set("framework", {"framework": framework})

    def resources(self, **_ignored) -> "AlgorithmConfig":
        return self  # the old resources() API: Skate sizes runners and learners itself

    def api_stack(self, **_ignored) -> "AlgorithmConfig":
        return self  # Skate has one stack, the new one

    def __getattr__(self, name):
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        if name == "lambda_" and values is not None:
            return values["lambda"]
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    # -- carrying it around -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return copy.deepcopy(self._values)

    def update_from_dict(self, d: dict) -> "AlgorithmConfig":
        """Apply flat settings, each through its section's checks."""
        sections = self._sections()
        for k, v in d.items():
            key = "lambda" if k == "lambda_" else k
            section = next((name for name, s in sections.items() if key in s), None)
            if section is None:
                known = sorted({n for s in sections.values() for n in s})
                raise TypeError(f"unknown setting {k!r} for {type(self).__name__}; valid "
                                f"settings: {', '.join(known)}")
            if section in ("env_runners", "learners", "evaluation"):
                getattr(self, section)(**{key: v})
            elif section == "framework":
                self.framework(v)
            elif section == "offline_data":
                self.offline_data(**{key: v})
            elif section == "multi_agent":
                self.multi_agent(**{key: v})
            else:
                self._values[key] = v
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "AlgorithmConfig":
        return cls().update_from_dict(d)

    def copy(self) -> "AlgorithmConfig":
        c = type(self)()
        c._values = copy.deepcopy(self._values)
        return c

    def to_json(self) -> str:
        return json.dumps(self._values, default=repr, indent=1, sort_keys=True)

    # Tune treats a config as a mapping (so `tune.run("PPO", config=PPOConfig()...)` works)
    def keys(self):
        return self._values.keys()

    def __getitem__(self, key):
        return self._values[key]

    def get(self, key, default=None):
        return self._values.get(key, default)

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def build(self, env=None, **_ignored):
        """The algorithm for this config (``build_algo`` is the same)."""
        if env is not None:
            self.environment(env)
        if self.algo_class is None:
            raise TypeError("this config has no algorithm; use PPOConfig() (or another "
                            "algorithm's config)")
        return self.algo_class(config=self)

    build_algo = build

    def __repr__(self):
        return f"{type(self).__name__}({self._values})"
