"""The ``rllib`` command: RLlib's command line, over ``skate.rllib``.

    rllib train --algo PPO --env CartPole-v1 [--config JSON] [--stop JSON]
                [--output DIR] [--input DIR]
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

``--output DIR`` records every step the env runners sample as JSON lines;
``--algo BC --input DIR`` (or MARWIL) trains from such a recording without
stepping the environment, evaluating in it every iteration, and stops on
``evaluation/env_runners/episode_return_mean``.

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
import glob
import json
import logging
import math
import os
import re
import signal
import sys
import time

from skate.scripts.rllib_inputs import (  # noqa: F401  (re-exported for callers and tests)
    FILE_KEYS,
    ITERATION_CAP,
    OLD_METRICS,
    PROG,
    Failure,
    UsageError,
    _algorithm,
    _apply_settings,
    _describe,
    build_config,
    check_env,
    check_stop,
    default_stop,
    load_experiment_file,
    parse_json_object,
)
from skate.scripts.rllib_progress import LiveTable, StopCriteria, _duration, _num  # noqa: F401


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: what is wrong and where to look
        raise UsageError(f"{message} (see `{self.prog} --help`)")


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
    offline = getattr(algo_cls, "offline", False)
    stop = StopCriteria(spec["stop"] or default_stop(env, offline),
                        stop_source if spec["stop"] else "the default stop")
    checkpoint_freq = args.checkpoint_freq if args.checkpoint_freq is not None \
        else (spec["checkpoint_freq"] or 0)
    at_end = args.checkpoint_at_end if args.checkpoint_at_end is not None \
        else (spec["checkpoint_at_end"] if spec["checkpoint_at_end"] is not None else True)

    # 3. run it (this process never imports torch: the trial does, in its own process)
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
        if offline:  # nothing sampled: the steps trained on, and the evaluation's returns
            er = (r.get("evaluation") or {}).get("env_runners") or {}
            steps = f"{_num(r.get('num_env_steps_trained_lifetime', 0))} recorded steps trained"
        else:
            steps = f"{_num(r.get('num_env_steps_sampled_lifetime', 0))} env steps"
        print(f"Done: {t} ran {r.get('training_iteration', 0)} iterations, {steps} in "
              f"{_duration(r.get('time_total_s', took))}; "
              f"{'evaluation ' if offline else ''}episode return mean "
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
    from skate.rllib.checkpoint import STATE_FILE

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
    from skate.rllib.checkpoint import read_state

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
    t.add_argument("--input", default=None, metavar="DIR",
                   help="recorded experience to train from (BC, MARWIL)")
    t.add_argument("--output", default=None, metavar="DIR",
                   help="record the experience sampled while training, as JSON lines")
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
