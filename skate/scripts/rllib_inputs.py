"""What ``rllib train`` was asked for: JSON flags, tuned-example files, configs, stops.

Each function turns one piece of user input into what the command runs, or
raises ``UsageError`` with one line naming the problem and the valid choices.
"""

from __future__ import annotations

import difflib
import json
import os
import re

PROG = "rllib"
ITERATION_CAP = 200  # the default stop's safety cap, as in RLlib's tuned examples
FILE_KEYS = ("algo", "run", "env", "config", "stop", "checkpoint_freq", "checkpoint_at_end")
# RLlib's old API-stack result names, as old tuned examples and habits still write them
OLD_METRICS = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "episode_reward_max": "env_runners/episode_return_max",
    "episode_reward_min": "env_runners/episode_return_min",
    "episode_len_mean": "env_runners/episode_len_mean",
    "episode_return_mean": "env_runners/episode_return_mean",
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "num_env_steps_sampled": "num_env_steps_sampled_lifetime",
}


class UsageError(Exception):
    """The command line or a file it names is wrong: exit 2."""


class Failure(Exception):
    """The command was well formed but did not succeed: exit 1."""


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# -- reading what the user gave -----------------------------------------------------------------
def parse_json_object(text: str, flag: str, example: str) -> dict:
    """``text`` as a JSON object; a ``UsageError`` naming ``flag`` and where the JSON broke."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        near = text[max(0, e.pos - 12):e.pos + 12]
        hint = " (JSON strings need double quotes)" if "'" in text else ""
        raise UsageError(f"{flag}: not valid JSON: {e.msg} at line {e.lineno}, column "
                         f"{e.colno} (char {e.pos}), near {near!r}{hint}; write it like "
                         f"{flag} '{example}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object like '{example}', got "
                         f"{type(value).__name__} {text!r}")
    return value


def check_stop(stop, source: str) -> dict:
    """Flat ``{result key: number}`` (nested mappings become ``a/b`` keys)."""
    if not isinstance(stop, dict):
        raise UsageError(f"{source} must be a mapping of result keys to thresholds, e.g. "
                         f"{{\"training_iteration\": 10}}; got {type(stop).__name__}")
    flat: dict = {}

    def walk(prefix: str, d: dict) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + "/", v)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise UsageError(f"{source}: the threshold of {key!r} must be a number "
                                 f"(training stops once the result reaches it), got {v!r}")
            else:
                flat[key] = v
    walk("", stop)
    if not flat:
        raise UsageError(f"{source} is empty: name at least one criterion, e.g. "
                         f"{{\"training_iteration\": 10}}")
    return flat


class _YAMLLoader:
    """yaml.SafeLoader, reading ``1e-3`` as a float as YAML 1.2 does (1.1 says string)."""

    _cls = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            Loader.add_implicit_resolver(
                "tag:yaml.org,2002:float",
                re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                               |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                               |\.[0-9_]+(?:[eE][-+][0-9]+)?
                               |[-+]?\.(?:inf|Inf|INF)
                               |\.(?:nan|NaN|NAN))$""", re.X),
                list("-+0123456789."))
            cls._cls = Loader
        return cls._cls


def load_experiment_file(path: str) -> tuple:
    """(experiment name or None, {algo, env, config, stop, ...}) of a tuned-example file;
    every problem is a ``UsageError`` naming the file."""
    try:
        import yaml
    except ImportError:
        raise UsageError("reading a tuned-example file needs PyYAML: pip install pyyaml") \
            from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_YAMLLoader.get())  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; -f takes a tuned-example YAML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    except yaml.YAMLError as e:
        from skate.scripts.yaml_errors import describe

        raise UsageError(describe(path, e)) from None
    shape = ("keys algo (or run), env, config, stop — or one experiment name mapping to "
             "them")
    if data is None:
        raise UsageError(f"{path}: the file is empty; it needs {shape}")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a mapping with {shape}; got a "
                         f"{type(data).__name__}")
    name = None
    if not set(data) & set(FILE_KEYS):  # Ray's form: {experiment name: {run, env, ...}}
        if len(data) > 1:
            raise UsageError(f"{path}: holds {len(data)} experiments "
                             f"({', '.join(map(str, data))}); `rllib train -f` runs one, "
                             f"so put each in its own file")
        name, exp = next(iter(data.items()))
        if not isinstance(exp, dict):
            raise UsageError(f"{path}: needs {shape}; got the key {name!r}")
    else:
        exp = data
    where = f"{path}: experiment {name!r}" if name is not None else path
    unknown = sorted(map(str, set(exp) - set(FILE_KEYS)))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys are "
                         f"{', '.join(FILE_KEYS)}")
    if "algo" in exp and "run" in exp and exp["algo"] != exp["run"]:
        raise UsageError(f"{where}: 'algo' ({exp['algo']}) and 'run' ({exp['run']}) "
                         f"disagree; give one of them")
    algo = exp.get("algo", exp.get("run"))
    if algo is None:
        raise UsageError(f"{where}: missing key 'algo' (or 'run'), the algorithm to train, "
                         f"e.g. algo: PPO")
    if not isinstance(algo, str):
        raise UsageError(f"{where}: 'algo' must be an algorithm's name, e.g. PPO; got {algo!r}")
    config = exp.get("config")
    if config is not None and not isinstance(config, dict):
        raise UsageError(f"{where}: 'config' must be a mapping of settings, got "
                         f"{type(config).__name__}")
    env = exp.get("env", (config or {}).get("env"))
    if env is not None and not isinstance(env, str):
        raise UsageError(f"{where}: 'env' must be an environment id, e.g. CartPole-v1; got "
                         f"{env!r}")
    out = {"algo": algo, "env": env, "config": config, "source": where}
    if exp.get("stop") is not None:
        out["stop"] = check_stop(exp["stop"], f"{where}: stop")
    freq = exp.get("checkpoint_freq")
    if freq is not None and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 0):
        raise UsageError(f"{where}: checkpoint_freq must be an integer >= 0, got {freq!r}")
    out["checkpoint_freq"] = freq
    at_end = exp.get("checkpoint_at_end")
    if at_end is not None and not isinstance(at_end, bool):
        raise UsageError(f"{where}: checkpoint_at_end must be true or false, got {at_end!r}")
    out["checkpoint_at_end"] = at_end
    return name, out


# -- the algorithm, its config, the stop criteria -----------------------------------------------
def _algorithm(name: str):
    """(registered name, Algorithm class)."""
    from skate.rllib.registry import ALGORITHMS, algorithm_class

    try:
        cls = algorithm_class(name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    canonical = {k.upper(): k for k in ALGORITHMS}[name.upper()]
    return canonical, cls


def _apply_settings(cfg, settings: dict, source: str) -> None:
    known = set(cfg.to_dict()) | {"lambda_"}
    for key in settings:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UsageError(f"{source}: unknown setting {key!r} for {type(cfg).__name__}"
                             f"{hint}; valid settings: {', '.join(sorted(known - {'lambda_'}))}")
    try:
        cfg.update_from_dict(settings)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{source}: {e}") from None


def _searched(value) -> bool:
    """A Tune search space (``{"grid_search": [...]}``): Tune resolves it per trial."""
    return isinstance(value, dict) and "grid_search" in value


def build_config(algo_cls, env: str, settings: dict | None, source: str, args,
                 label: str | None = None):
    """The AlgorithmConfig to train with, and a few words on where it came from (``source``
    names the settings in errors, ``label`` in that description)."""
    name = algo_cls.__name__
    if settings is None:  # no config given: the algorithm's tuned one for this env, if any
        cfg, origin = None, f"{name} defaults"
        tuned = getattr(algo_cls, "default_config_for", None)
        if tuned is not None:
            try:
                cfg = tuned(env)
            except (KeyError, ValueError, NotImplementedError):
                cfg = None
            if isinstance(cfg, dict):
                cfg = algo_cls.get_default_config().update_from_dict(cfg)
            plain = algo_cls.get_default_config().environment(env).to_dict()
            if cfg is not None and cfg.to_dict() != {**plain, "env": cfg["env"]}:
                origin = f"{name}'s tuned config for {env}"
        if cfg is None:
            cfg = algo_cls.get_default_config().env_runners(num_env_runners=2)
    else:
        cfg, origin = algo_cls.get_default_config(), f"{name} defaults + {label or source}"
        _apply_settings(cfg, settings, source)
    try:
        cfg.environment(env)
        if not _searched(cfg["num_env_runners"]):  # check what update_from_dict set
            cfg.env_runners(num_env_runners=cfg["num_env_runners"])
        if not _searched(cfg["framework"]):
            cfg.framework(cfg["framework"])
    except (TypeError, ValueError) as e:
        raise UsageError(f"{source}: {e}") from None
    for flag, apply in (("--num-env-runners", lambda v: cfg.env_runners(num_env_runners=v)),
                        ("--seed", lambda v: cfg.debugging(seed=v)),
                        ("--framework", lambda v: cfg.framework(v)),
                        ("--input", lambda v: cfg.offline_data(input_=os.path.abspath(v))),
                        ("--output", lambda v: cfg.offline_data(output=os.path.abspath(v)))):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            try:
                apply(value)
            except (TypeError, ValueError) as e:
                raise UsageError(f"{flag}: {e}") from None
    if getattr(algo_cls, "offline", False):
        check_offline_input(cfg, name)
    return cfg, origin


def check_offline_input(cfg, name: str) -> None:
    """An offline algorithm's recording is there, and its training is evaluated in the env
    (an offline trial samples nothing, so evaluation is where its returns come from)."""
    folder = cfg["input_"]
    if not folder:
        raise UsageError(f"{name} trains from recorded experience: pass --input FOLDER (record "
                         f"one with `rllib train --algo PPO --env ... --output FOLDER`)")
    from skate.rllib.offline import read_rows, read_spaces

    try:
        next(read_rows(folder))
        read_spaces(folder)
    except (ValueError, StopIteration) as e:
        raise UsageError(f"--input: {e or f'{folder} holds no steps'}") from None
    if not cfg["evaluation_interval"]:
        cfg.evaluation(evaluation_interval=1)


def check_env(cfg) -> None:
    """Build one environment and check the model settings against it, so a wrong env or
    model is a one-line error here rather than a trial's traceback (without importing
    torch: the trial does that)."""
    from skate.rllib.config import check_model
    from skate.rllib.env_runner import spaces_of

    env, env_config, model = cfg["env"], cfg["env_config"], cfg["model"]
    if _searched(env_config) or _searched(model):
        return  # each trial's values are checked when it starts
    try:
        obs_space, act_space = spaces_of(env, env_config)
    except ValueError as e:  # unknown id: the message names close matches
        raise UsageError(str(e)) from None
    except TypeError as e:  # gymnasium rejects an env_config keyword
        raise UsageError(f"environment {env!r} with env_config {env_config}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a missing dependency (box2d, mujoco), ...
        raise Failure(f"environment {env!r} could not be made: {_describe(e)}") from None
    try:
        check_model(model, obs_space, act_space)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{env}: {e}") from None


def default_stop(env, offline: bool = False) -> dict:
    """The env spec's reward_threshold on the mean return (``offline``: the evaluation's),
    and a cap on iterations."""
    stop = {}
    if isinstance(env, str):
        import gymnasium as gym

        try:
            threshold = gym.spec(env).reward_threshold
        except Exception:  # noqa: BLE001 - a name registered with register_env
            threshold = None
        if threshold is not None:
            key = "env_runners/episode_return_mean"
            stop["evaluation/" + key if offline else key] = threshold
    stop["training_iteration"] = ITERATION_CAP
    return stop


_MISSING = object()


