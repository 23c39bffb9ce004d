"""An algorithm's checkpoint: what a folder holds, written and read back.

A checkpoint is a folder with

* ``algorithm_state.json``: the format version, the algorithm's name, its
  config (an env given as a class or function is stored as None and must be
  given again when restoring), lifetime counters, the last 100 episodes and
  the observation filter's statistics;
* ``module.pt``: the RLModule's torch state dict (multi-agent: one per policy,
  keyed by policy id);
* ``learner.pt``: the algorithm's learner state and each learner group's
  (optimizer, target networks);
* ``multi_agent.pkl`` (multi-agent only): the policies and the mapping
  function, pickled with cloudpickle, as Tune stores a trainable.

Format 1 (policy and value nets apart, the optimizer with the algorithm) is
still read: its weights carry over and the optimizer starts afresh. Other
formats are refused with a message naming the readable ones.

>>> import tempfile
>>> from skate.rllib import PPOConfig
>>> algo = PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0).build()
>>> with tempfile.TemporaryDirectory() as folder:
...     read_state(algo.save(folder))["algorithm"]
'PPO'
>>> algo.stop()
"""

from __future__ import annotations

import json
import os

CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: separate policy/value nets, optimizer with the algorithm
STATE_FILE = "algorithm_state.json"
MULTI_AGENT_FILE = "multi_agent.pkl"


def save(algo, checkpoint_dir: str) -> None:
    """Write ``algo``'s checkpoint into ``checkpoint_dir`` (which exists)."""
    import torch

    state = {"format_version": CHECKPOINT_FORMAT, "algorithm": type(algo).__name__,
             "config": json.loads(algo.algo_config.to_json()),
             "steps_lifetime": algo.steps_lifetime,
             "episodes_lifetime": algo.episodes_lifetime,
             "episodes": list(algo._episodes), "obs_filter": algo._filter_state()}
    if not isinstance(algo.algo_config.env, str):
        state["config"]["env"] = None  # a class or function: given again when restoring
    if algo.multi_agent:  # policies and the mapping function travel pickled
        import cloudpickle

        for k in ("policies", "policy_mapping_fn"):
            state["config"][k] = None
        with open(os.path.join(checkpoint_dir, MULTI_AGENT_FILE), "wb") as f:
            cloudpickle.dump({k: algo.algo_config[k] for k in ("policies",
                                                               "policy_mapping_fn")}, f)
    with open(os.path.join(checkpoint_dir, STATE_FILE), "w") as f:
        json.dump(state, f, indent=1)
    weights = ({pid: m.state_dict() for pid, m in algo.modules.items()} if algo.multi_agent
               else algo.module.state_dict())
    torch.save(weights, os.path.join(checkpoint_dir, "module.pt"))
    learner = {"algorithm": algo.learner_state()}
    if algo.multi_agent:
        learner["learners"] = {pid: g.get_state() for pid, g in algo.learner_groups.items()}
    elif algo.learner_group is not None:
        learner["learner"] = algo.learner_group.get_state()
    torch.save(learner, os.path.join(checkpoint_dir, "learner.pt"))


def load(algo, checkpoint_dir: str) -> None:
    """Load the checkpoint in ``checkpoint_dir`` into ``algo`` (built with its config)."""
    import torch

    state = read_state(checkpoint_dir)
    if state["algorithm"] != type(algo).__name__:
        raise ValueError(f"{checkpoint_dir} holds a {state['algorithm']} checkpoint, not "
                         f"{type(algo).__name__}")
    from skate.rllib.module import upgrade_state_v1

    weights = torch.load(os.path.join(checkpoint_dir, "module.pt"))
    learner = torch.load(os.path.join(checkpoint_dir, "learner.pt"), weights_only=False)
    if state["format_version"] == 1:
        weights = upgrade_state_v1(weights)
        learner = {"algorithm": {k: v for k, v in learner.items()
                                 if k not in ("optimizer", "target")},
                   "learner": {"optimizer": None, "target": learner.get("target")}}
    algo.set_learner_state(learner["algorithm"])
    if algo.multi_agent:
        for pid, w in weights.items():
            algo.modules[pid].load_state_dict(w)
        for pid, g in algo.learner_groups.items():
            g.set_state(learner["learners"][pid], algo.modules[pid].get_state())
    else:
        algo.module.load_state_dict(weights)
        if algo.learner_group is not None:
            algo.learner_group.set_state(learner["learner"], algo.module.get_state())
    algo.steps_lifetime = state["steps_lifetime"]
    algo.episodes_lifetime = state["episodes_lifetime"]
    algo._episodes.extend(tuple(e) for e in state["episodes"])
    if algo.obs_filter is not None and state.get("obs_filter"):
        algo.obs_filter.set_state(state["obs_filter"])


def algorithm_and_config(path: str, env=None) -> tuple[type, dict]:
    """The algorithm class and config a checkpoint was saved with (``env`` replaces its
    env, needed when that was a class or function)."""
    from skate.rllib.registry import algorithm_class

    state = read_state(path)
    config = dict(state["config"])
    if env is not None:
        config["env"] = env
    pickled = os.path.join(path, MULTI_AGENT_FILE)
    if os.path.exists(pickled):
        import cloudpickle

        with open(pickled, "rb") as f:
            config.update(cloudpickle.load(f))
    return algorithm_class(state["algorithm"]), config


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
