"""The ``rllib`` command: RLlib's command line, over ``skate.rllib``.

    rllib train --algo PPO --env CartPole-v1 [--config JSON] [--stop JSON]
                [--num-env-runners N] [--checkpoint-freq N] [--no-checkpoint-at-end]
                [--storage-path DIR] [--seed N] [--framework torch] [--address ADDR]
    rllib train -f tuned_example.yaml [the same options, which override the file]
    rllib evaluate CHECKPOINT [--episodes N] [--render] [--env ID] [--seed N]
    rllib list

``rllib train`` starts Skate, runs the algorithm as a Tune trial (``tune.run``:
progress.csv, result.json and TensorBoard events in the trial folder,
checkpoints in it too), shows a live table of the iterations and ends with
the run folder and the last checkpoint (one is written at the end unless
``--no-checkpoint-at-end``). ``--run`` is another name for ``--algo``.

``--config`` is a JSON object of the algorithm's settings (``AlgorithmConfig``
names: ``{"lr": 0.0003, "num_env_runners": 4}``); without it (and without a
``config`` in the file) the algorithm's tuned config for the environment is
used when it has one (``PPO.default_config_for``). ``--stop`` is a JSON object
of result keys and thresholds (``{"training_iteration": 10}``; nested keys with
slashes); the default is the environment's ``reward_threshold`` on
``env_runners/episode_return_mean``, capped at 200 iterations.

A tuned-example file (``-f``) is YAML: either Ray's form, one experiment name
mapping to ``{run or algo, env, stop, config}``, or that mapping itself.

A user's mistake (an unknown flag, algorithm, environment or setting, bad
JSON or YAML, a folder that is no checkpoint) prints one line
``rllib: error: ...`` to stderr and exits 2; a failure at run time (a trial
that raised, no cluster to join) exits 1; Ctrl-C stops cleanly and exits 130.
None of them prints a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import glob
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import time

from skate.tune.callback import Callback
from skate.tune.stopper import Stopper

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


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: what is wrong and where to look
        raise UsageError(f"{message} (see `{self.prog} --help`)")


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
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML{where}: {problem}") from None
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
                        ("--framework", lambda v: cfg.framework(v))):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            try:
                apply(value)
            except (TypeError, ValueError) as e:
                raise UsageError(f"{flag}: {e}") from None
    return cfg, origin


def check_env(cfg) -> None:
    """Build one environment and the module for it, so a wrong env or model is a one-line
    error here rather than a trial's traceback."""
    from skate.rllib.env_runner import spaces_of
    from skate.rllib.module import RLModule

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
        RLModule(obs_space, act_space, model)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"{env}: {e}") from None


def default_stop(env) -> dict:
    """The env spec's reward_threshold on the mean return, and a cap on iterations."""
    stop = {}
    if isinstance(env, str):
        import gymnasium as gym

        try:
            threshold = gym.spec(env).reward_threshold
        except Exception:  # noqa: BLE001 - a name registered with register_env
            threshold = None
        if threshold is not None:
            stop["env_runners/episode_return_mean"] = threshold
    stop["training_iteration"] = ITERATION_CAP
    return stop


_MISSING = object()


def _lookup(result: dict, key: str):
    if key in result:
        return result[key]
    node = result
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _flat_keys(result: dict, prefix: str = "") -> list:
    out = []
    for k, v in result.items():
        if isinstance(v, dict):
            out += _flat_keys(v, f"{prefix}{k}/")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(f"{prefix}{k}")
    return out


class StopCriteria(Stopper):
    """Tune's dict stopper, but a key no result has is a one-line ``UsageError`` (with close
    matches) and RLlib's old result names mean their new ones."""

    def __init__(self, criteria: dict, source: str):
        self.criteria = dict(criteria)
        self.source = source

    @staticmethod
    def _value(result: dict, key: str):
        value = _lookup(result, key)
        if value is _MISSING and key in OLD_METRICS:
            value = _lookup(result, OLD_METRICS[key])
        return value

    def __call__(self, trial_id: str, result: dict) -> bool:
        for key, threshold in self.criteria.items():
            value = self._value(result, key)
            if value is _MISSING:
                keys = sorted({k for k in _flat_keys(result) if not k.startswith("__")})
                close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UsageError(f"{self.source}: the results have no {key!r}{hint} (they "
                                 f"report: {', '.join(keys)})")
            if isinstance(value, (int, float)) and value >= threshold:
                return True
        return False

    def stop_all(self) -> bool:
        return False

    def met(self, result: dict) -> list:
        """The criteria ``result`` meets, as 'key >= value' strings."""
        out = []
        for key, threshold in self.criteria.items():
            value = self._value(result, key)
            if isinstance(value, (int, float)) and value >= threshold:
                out.append(f"{key} >= {_num(threshold)}")
        return out

    def describe(self) -> str:
        return " or ".join(f"{k} >= {_num(v)}" for k, v in self.criteria.items())


# -- the live table -----------------------------------------------------------------------------
def _num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "-"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.1f}" if abs(x) >= 0.1 else f"{x:.3g}"


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


COLUMNS = (("iter", 5), ("return mean", 11), ("return max", 10), ("len mean", 8),
           ("env steps", 10), ("steps/s", 8), ("time", 8))


class LiveTable(Callback):
    """One row per training iteration: redrawn in place on a terminal (the newest rows,
    and a status line whose clock ticks), appended line by line otherwise."""

    def __init__(self, out=None, tty: bool | None = None, status: str = ""):
        self.out = out or sys.stdout
        if tty is None:  # cursor moves need a terminal that understands them
            tty = self.out.isatty() and os.environ.get("TERM") != "dumb"
        self.tty = tty
        self.status = status
        self.rows: list = []
        self.trials: list = []
        self.started = time.monotonic()
        self._drawn = 0  # lines of the last redraw (tty)
        self._last_draw = 0.0
        self._header_done = False
        self._multi = False

    def _header(self) -> str:
        cells = [f"{name:>{w}}" for name, w in COLUMNS]
        return ("trial".ljust(22) + "  " if self._multi else "") + "  ".join(cells)

    def row(self, trial, result: dict) -> str:
        er = result.get("env_runners") or {}
        steps_per_s = result.get("env_steps_per_s")
        if steps_per_s is None and result.get("time_this_iter_s"):
            steps_per_s = er.get("num_env_steps_sampled", 0) / result["time_this_iter_s"]
        values = (result.get("training_iteration"), er.get("episode_return_mean", math.nan),
                  er.get("episode_return_max", math.nan), er.get("episode_len_mean", math.nan),
                  result.get("num_env_steps_sampled_lifetime"),
                  None if steps_per_s is None else round(steps_per_s),
                  _duration(result.get("time_total_s", 0.0)))
        cells = [f"{'-' if v is None else _num(v):>{w}}" for v, (_, w) in zip(values, COLUMNS)]
        return (str(trial)[:22].ljust(22) + "  " if self._multi else "") + "  ".join(cells)

    # hooks
    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.trials = trials
        if len(trials) > 1 and not self._multi and not self.rows:
            self._multi = True
        self.rows.append(self.row(trial, result))
        if self.tty:
            self.redraw()
        else:
            if not self._header_done:
                self.out.write(self._header() + "\n")
                self._header_done = True
            self.out.write(self.rows[-1] + "\n")
            self.out.flush()

    def on_step_end(self, iteration, trials, **info):
        self.trials = trials
        if self.tty and time.monotonic() - self._last_draw >= 1.0:
            self.redraw()

    def on_experiment_end(self, trials, **info):
        self.trials = trials
        if self.tty:
            self.redraw(final=True)

    def redraw(self, final: bool = False) -> None:
        size = shutil.get_terminal_size((100, 24))
        keep = max(3, min(30, size.lines - 8))
        lines = [self._header()] + self.rows[-keep:]
        if not final:
            doing = "training" if self.rows else "starting"
            lines.append(f"{_duration(time.monotonic() - self.started)} elapsed, {doing} "
                         f"{self.status}")
        lines = [line[:size.columns - 1] for line in lines]
        up = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.out.write(up + "\n".join(lines) + "\n")
        self.out.flush()
        self._drawn = len(lines)
        self._last_draw = time.monotonic()


# -- the commands -------------------------------------------------------------------------------
def _experiment_name(storage: str, algo: str, env: str, prefix: str | None) -> str:
    stem = re.sub(r"[^\w.,=+-]+", "_", prefix or f"{algo}_{env}")
    base = f"{stem}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
    name, i = base, 1
    while os.path.exists(os.path.join(storage, name)):
        i += 1
        name = f"{base}_{i}"
    return name


class _Interrupted:
    """SIGINT / SIGTERM become KeyboardInterrupt (Tune's runner stops its trials on it); the
    signal is remembered, and a second one ends the process at once."""

    def __init__(self):
        self.signum = None
        self._previous: dict = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        self.signum = signum
        for s in self._previous:
            signal.signal(s, signal.SIG_DFL)
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


def _train(args) -> int:
    # 1. everything that needs no imports: the file, the JSON, the flags
    spec: dict = {"algo": None, "env": None, "config": None, "stop": None,
                  "checkpoint_freq": None, "checkpoint_at_end": None}
    exp_name, file_source = None, None
    if args.file:
        exp_name, spec = load_experiment_file(args.file)
        file_source = spec["source"]
    config_source = f"{file_source}: config" if file_source else "--config"
    label = f"the config in {os.path.basename(args.file)}" if args.file else "--config"
    if args.config is not None:
        extra = parse_json_object(args.config, "--config", '{"lr": 0.0003}')
        if spec["config"] is not None:
            config_source = f"{file_source}: config + --config"
            label += " + --config"
        spec["config"] = {**(spec["config"] or {}), **extra}
    stop_source = f"{file_source}: stop" if spec.get("stop") else "--stop"
    if args.stop is not None:
        spec["stop"] = check_stop(parse_json_object(args.stop, "--stop",
                                                    '{"training_iteration": 10}'), "--stop")
        stop_source = "--stop"
    algo = args.algo or spec["algo"]
    env = args.env or spec["env"] or (spec["config"] or {}).get("env")
    # 2. the algorithm, its config and the environment (this imports torch)
    if env is None:
        raise UsageError("train needs --env ID: a gymnasium environment id such as "
                         "CartPole-v1")
    if not isinstance(env, str):
        raise UsageError(f"--env must be an environment id, got {env!r}")
    if algo is None:
        from skate.rllib.registry import ALGORITHMS

        raise UsageError(f"train needs --algo NAME (or -f FILE); algorithms: "
                         f"{', '.join(sorted(ALGORITHMS))}")
    algo, algo_cls = _algorithm(algo)
    cfg, origin = build_config(algo_cls, env, spec["config"], config_source, args, label)
    check_env(cfg)
    stop = StopCriteria(spec["stop"] or default_stop(env),
                        stop_source if spec["stop"] else "the default stop")
    checkpoint_freq = args.checkpoint_freq if args.checkpoint_freq is not None \
        else (spec["checkpoint_freq"] or 0)
    at_end = args.checkpoint_at_end if args.checkpoint_at_end is not None \
        else (spec["checkpoint_at_end"] if spec["checkpoint_at_end"] is not None else True)

    # 3. run it
    import skate
    from skate import tune
    from skate.tune.trial import Trial
    from skate.tune.tune import default_storage_path

    storage = os.path.abspath(os.path.expanduser(args.storage_path or default_storage_path()))
    if os.path.exists(storage) and not os.path.isdir(storage):
        raise UsageError(f"--storage-path: {storage} is a file, not a folder")
    name = _experiment_name(storage, algo, env, exp_name)
    run_dir = os.path.join(storage, name)
    logging.getLogger("skate.tune").setLevel(logging.CRITICAL)  # errors are reported here
    print(f"Training {algo} on {env} ({origin}) until {stop.describe()}.", flush=True)
    print(f"Run folder: {run_dir}  (Ctrl-C stops)", flush=True)
    table = LiveTable(status=f"{algo} on {env}; stops at {stop.describe()} (Ctrl-C stops "
                             f"now).")
    started = time.monotonic()
    with _Interrupted() as interrupted:
        try:
            try:
                skate.init(address=args.address)
            except (ConnectionError, ValueError) as e:
                raise Failure(str(e)) from None
            analysis = tune.run(algo, name=name, config=cfg.to_dict(), stop=stop,
                                storage_path=storage, checkpoint_freq=checkpoint_freq,
                                checkpoint_at_end=at_end, verbose=0, callbacks=[table],
                                raise_on_failed_trial=False)
        except KeyboardInterrupt:
            interrupted.signum = interrupted.signum or signal.SIGINT
            analysis = None
        finally:
            for s in (signal.SIGINT, signal.SIGTERM):  # a second signal: end at once
                signal.signal(s, signal.SIG_DFL)
            if skate.is_initialized():
                skate.shutdown()
    took = time.monotonic() - started
    trials = analysis.trials if analysis is not None else table.trials
    checkpoints = [t.checkpoint.path for t in trials if t.checkpoint is not None]
    if interrupted.signum is not None:
        last = f"; last checkpoint {checkpoints[-1]}" if checkpoints else "; no checkpoint"
        print(f"{PROG}: interrupted after {_duration(took)}; results so far in {run_dir}{last}",
              file=sys.stderr, flush=True)
        return 128 + int(interrupted.signum)
    failed = [t for t in trials if t.status == Trial.ERROR]
    if failed:
        t = failed[0]
        lines = [line.strip() for line in (t.error_msg or "").splitlines() if line.strip()]
        why = lines[-1] if lines else "it raised"
        where = f" (traceback in {t.error_file})" if t.error_file else ""
        raise Failure(f"training {algo} on {env} failed: {why}{where}")
    for t in trials:
        r = t.last_result
        er = r.get("env_runners") or {}
        met = stop.met(r)
        print(f"Done: {t} ran {r.get('training_iteration', 0)} iterations, "
              f"{_num(r.get('num_env_steps_sampled_lifetime', 0))} env steps in "
              f"{_duration(r.get('time_total_s', took))}; episode return mean "
              f"{_num(er.get('episode_return_mean', math.nan))}"
              f"{'; stopped at ' + ' and '.join(met) if met else ''}.")
        print(f"Trial folder: {t.local_path}  (progress.csv, result.json, TensorBoard events)")
        if len(trials) > 1 and t.checkpoint is not None:
            print(f"Checkpoint: {t.checkpoint.path}")
    print(f"Run folder: {run_dir}")
    if checkpoints:
        print(f"Last checkpoint: {checkpoints[-1]}")
        print(f"Evaluate it: {PROG} evaluate {checkpoints[-1]}", flush=True)
    else:
        print("No checkpoint was written (pass --checkpoint-freq N or --checkpoint-at-end).",
              flush=True)
    return 0


def find_checkpoint(path: str) -> str:
    """``path`` if it is a checkpoint; else the newest checkpoint of the one trial in it (a
    trial or run folder)."""
    if not os.path.exists(path):
        raise UsageError(f"no such checkpoint: {path}")
    from skate.rllib.algorithm import STATE_FILE

    if not os.path.isdir(path):
        raise UsageError(f"{path} is a file; a checkpoint is a folder holding {STATE_FILE}")
    if os.path.exists(os.path.join(path, STATE_FILE)):
        return path
    found = sorted(glob.glob(os.path.join(path, "checkpoint_*", STATE_FILE))
                   + glob.glob(os.path.join(path, "*", "checkpoint_*", STATE_FILE)))
    trials = sorted({os.path.dirname(os.path.dirname(f)) for f in found})
    if not found:
        raise UsageError(f"{path} is not an rllib checkpoint (no {STATE_FILE}) and holds "
                         f"none; pass a checkpoint_NNNNNN folder")
    if len(trials) > 1:
        raise UsageError(f"{path} holds checkpoints of {len(trials)} trials "
                         f"({', '.join(os.path.basename(t) for t in trials)}); pass one "
                         f"checkpoint_NNNNNN folder")
    return os.path.dirname(found[-1])


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _evaluate(args) -> int:
    path = find_checkpoint(args.checkpoint)
    if os.path.normpath(path) != os.path.normpath(args.checkpoint):
        print(f"Using the newest checkpoint there: {path}", flush=True)
    from skate.rllib.algorithm import read_state

    try:
        state = read_state(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: its algorithm state cannot be read: {e}") from None
    algo_name, algo_cls = _algorithm(str(state.get("algorithm")))
    config = dict(state.get("config") or {})
    env = args.env or config.get("env")
    if not isinstance(env, str):
        raise UsageError(f"{path} was trained on an environment given as a class or function, "
                         f"not an id; pass --env ID (or use Algorithm.from_checkpoint(path, "
                         f"env=...) from Python)")
    config["env"] = env
    # Algorithm.from_checkpoint, less its env runners: evaluating needs only the policy.
    config["num_env_runners"] = 0
    cfg = algo_cls.get_default_config()
    _apply_settings(cfg, {k: v for k, v in config.items() if k != "__trial_info__"},
                    f"{path} config")
    check_env(cfg)
    if args.render and not _has_display():
        raise Failure("--render needs a display (neither DISPLAY nor WAYLAND_DISPLAY is set); "
                      "run without --render to print the returns only")
    import gymnasium as gym

    algo = algo_cls(config=cfg.to_dict())
    try:
        try:
            algo.restore(path)
        except Exception as e:  # noqa: BLE001 - a damaged or mismatched checkpoint
            raise UsageError(f"{path}: cannot load the checkpoint: {_describe(e)}") from None
        try:
            env_obj = gym.make(env, render_mode="human" if args.render else None,
                               **(config.get("env_config") or {}))
        except Exception as e:  # noqa: BLE001 - say, pygame missing for render_mode="human"
            raise Failure(f"making {env!r} failed: {_describe(e)}") from None
        print(f"Evaluating {algo_name} (iteration {algo.iteration}) on {env}: {args.episodes} "
              f"greedy episode{'s' if args.episodes != 1 else ''}.", flush=True)
        returns = []
        try:
            for i in range(args.episodes):
                seed = None if args.seed is None else args.seed + i
                obs, _ = env_obj.reset(seed=seed)
                total, length, done = 0.0, 0, False
                while not done:
                    action = algo.compute_single_action(obs, explore=False)
                    obs, reward, terminated, truncated, _ = env_obj.step(action)
                    total += float(reward)
                    length += 1
                    done = terminated or truncated
                returns.append(total)
                print(f"episode {i + 1}: return {_num(total)}, length {length}", flush=True)
        finally:
            env_obj.close()
    finally:
        algo.stop()
    mean = sum(returns) / len(returns)
    episodes = f"{len(returns)} episode{'s' if len(returns) != 1 else ''}"
    print(f"Mean return over {episodes}: {mean:.2f} (min {_num(min(returns))}, max "
          f"{_num(max(returns))})", flush=True)
    return 0


def _list(args) -> int:
    from skate.rllib.registry import ALGORITHMS

    width = max(map(len, ALGORITHMS))
    for name in sorted(ALGORITHMS):
        print(f"{name:<{width}}  {ALGORITHMS[name][2]}")
    return 0


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, allow_abbrev=False,
                description="Train, evaluate and list Skate's RLlib algorithms.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", allow_abbrev=False,
                       help="train an algorithm on an environment (Ctrl-C stops)",
                       description="Train an algorithm as a Tune trial, with a live table; "
                                   "ends with the run folder and the last checkpoint.")
    t.add_argument("--algo", "--run", dest="algo", default=None,
                   help="algorithm to train (see `rllib list`), e.g. PPO")
    t.add_argument("--env", default=None, help="gymnasium environment id, e.g. CartPole-v1")
    t.add_argument("-f", "--config-file", dest="file", default=None, metavar="FILE",
                   help="tuned-example YAML: algo (or run), env, config, stop; the other "
                        "options override it")
    t.add_argument("--config", default=None, metavar="JSON",
                   help='algorithm settings as a JSON object, e.g. \'{"lr": 0.0003}\' '
                        "(default: the algorithm's tuned config for the env, if it has one)")
    t.add_argument("--stop", default=None, metavar="JSON",
                   help='stop criteria as a JSON object, e.g. \'{"training_iteration": 10}\' '
                        f"(default: the env's reward threshold, at most {ITERATION_CAP} "
                        f"iterations)")
    t.add_argument("--num-env-runners", type=_count(0), default=None, metavar="N",
                   help="env-runner actors (0: sample in the trial itself)")
    t.add_argument("--checkpoint-freq", type=_count(0), default=None, metavar="N",
                   help="checkpoint every N iterations (default: 0, only at the end)")
    t.add_argument("--checkpoint-at-end", action=argparse.BooleanOptionalAction, default=None,
                   help="checkpoint when training ends (default: yes)")
    t.add_argument("--storage-path", default=None, metavar="DIR",
                   help="where run folders go (default: $SKATE_RESULTS_DIR or "
                        "~/skate_results)")
    t.add_argument("--seed", type=int, default=None, help="random seed")
    t.add_argument("--framework", choices=["torch"], default=None,
                   help="deep-learning framework (torch only)")
    t.add_argument("--address", default=None,
                   help="join this Skate cluster (default: SKATE_ADDRESS / RAY_ADDRESS, else "
                        "start a private one)")

    e = sub.add_parser("evaluate", allow_abbrev=False,
                       help="run greedy episodes of a checkpoint's policy",
                       description="Load a checkpoint and print the returns of greedy "
                                   "episodes.")
    e.add_argument("checkpoint", help="a checkpoint folder (or a trial folder holding some)")
    e.add_argument("--episodes", type=_count(1), default=10, metavar="N",
                   help="episodes to run (default: 10)")
    e.add_argument("--render", action="store_true", help="show the episodes (needs a display)")
    e.add_argument("--env", default=None,
                   help="environment id (default: the one the checkpoint was trained on)")
    e.add_argument("--seed", type=int, default=None, help="seed of the first episode's reset")

    sub.add_parser("list", help="the algorithms, one per line")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handlers = {"train": _train, "evaluate": _evaluate, "list": _list}
    try:
        p = _parser()
        args, rest = p.parse_known_args(argv)
        if rest:
            command = f"{PROG} {args.command}" if args.command else PROG
            raise UsageError(f"unrecognized arguments: {' '.join(rest)} (see `{command} "
                             f"--help`)")
        if args.command is None:
            p.print_help()
            return 2
        return handlers[args.command](args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        print(f"{PROG}: error: {_describe(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
