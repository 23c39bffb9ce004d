"""Multi-agent env runners: copies of a ``MultiAgentEnv`` stepped with one policy per module.

Each step, every agent in an environment's observations is mapped to its
policy (``policy_mapping_fn(agent_id, episode)``, once per agent and episode)
and each policy acts for all of its agents in every copy at once: one forward
pass per policy per step, however many agents share it.

Agents act at different steps, so a policy's experience is not a ``[T, N]``
grid. Each agent's transitions form a run; a transition's successor value is
the value of the agent's next observation, whenever that comes (turn-based
agents skip steps), so the last transition of a run stays pending until the
agent is observed again or is done, and pending transitions carry over to the
next ``sample``. A policy's batch is its agents' runs stacked one after
another as a single column (``[M, 1]``), each run's last row marked where the
trace stops: ``terminateds`` (the agent is done), ``truncateds`` (the episode was
cut off, or the run ends with this batch: its future is its successor's value).
With those marks, ``compute_gae`` over the column is GAE over each run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from skate.rllib.env_runner import _creator, torch_policy
from skate.rllib.multi_agent_env import ALL, MultiAgentEnv
from skate.rllib.numpy_policy import NumpyPolicy


@dataclass
class PolicySpec:
    """A policy of a multi-agent config; spaces left None are those of its agents.

    >>> PolicySpec().observation_space is None
    True
    """

    observation_space: object = None
    action_space: object = None


@dataclass
class EpisodeInfo:
    """What ``policy_mapping_fn(agent_id, episode)`` gets as ``episode``."""

    id_: int
    env_index: int = 0


def make_multi_agent_env(env, env_config: dict) -> MultiAgentEnv:
    e = _creator(env, env_config)()
    if not isinstance(e, MultiAgentEnv):
        e.close()
        raise TypeError(f"multi_agent() needs a MultiAgentEnv (dicts keyed by agent id); "
                        f"{env!r} makes a {type(e).__name__}")
    return e


def policy_spaces(env, env_config: dict, policies: dict, mapping_fn) -> dict:
    """{policy id: (observation space, action space)}: a ``PolicySpec``'s own, else those of
    the first agent ``mapping_fn`` maps to it; an error naming a policy it cannot infer."""
    e = make_multi_agent_env(env, env_config)
    try:
        agents = list(e.possible_agents)
        if not agents:
            raise ValueError(f"{type(e).__name__}.possible_agents is empty")
        mapped: dict = {}
        for aid in agents:
            pid = mapping_fn(aid, EpisodeInfo(0))
            if pid not in policies:
                raise ValueError(f"policy_mapping_fn mapped agent {aid!r} to {pid!r}, which is "
                                 f"not in policies ({', '.join(map(repr, policies))})")
            mapped.setdefault(pid, aid)
        out = {}
        for pid, spec in policies.items():
            spec = spec or PolicySpec()
            aid = mapped.get(pid)
            if aid is None and (spec.observation_space is None or spec.action_space is None):
                raise ValueError(f"policy {pid!r}: no agent maps to it at the start of an "
                                 f"episode, so its spaces are unknown; give them as "
                                 f"PolicySpec(observation_space=, action_space=)")
            out[pid] = (spec.observation_space or e.get_observation_space(aid),
                        spec.action_space or e.get_action_space(aid))
        return out
    finally:
        e.close()


@dataclass
class _Run:
    """One agent's transitions since its batch was last taken (see the module docstring)."""

    policy: str
    rows: list = field(default_factory=list)  # [obs, action, logp, value, reward, next value,
    # end: None, or where the trace stops, "terminated" or "truncated"]
    pending: bool = False  # the last row's next value is not known yet


class MultiAgentEnvRunner:
    """Steps ``num_envs_per_env_runner`` copies of a ``MultiAgentEnv`` with one module per
    policy (sent as ``{policy id: weights}``)."""

    def __init__(self, config: dict, worker_index: int = 0, modules: dict | None = None):
        import torch

        if not config.get("in_driver"):
            torch.set_num_threads(1)
        self.mapping_fn = config["policy_mapping_fn"]
        self.num_envs = int(config["num_envs_per_env_runner"])
        self.envs = [make_multi_agent_env(config["env"], config["env_config"])
                     for _ in range(self.num_envs)]
        if modules is None:
            from skate.rllib.module import RLModule

            make = config.get("module_class") or RLModule
            modules = {pid: make(obs, act, config["model"])
                       for pid, (obs, act) in config["policy_spaces"].items()}
        self.modules = modules
        for m in modules.values():
            m.clip_actions = config.get("clip_actions", True)
        seed = config.get("seed")
        base = None if seed is None else seed + 1000 * worker_index
        self.rng = np.random.default_rng(base)
        if base is not None:
            torch.manual_seed(base)
        self._episode_ids = itertools.count(worker_index * 1_000_000)
        self.episodes: list = [None] * self.num_envs
        self._closed: dict = {}  # policy id -> runs that ended since the last batch
        self.obs = [self._reset(i, None if base is None else base + i)
                    for i in range(self.num_envs)]
        self.runs: list = [{} for _ in range(self.num_envs)]  # per env: agent -> _Run

    def _reset(self, i: int, seed=None) -> dict:
        obs, _ = self.envs[i].reset(seed=seed)
        self.episodes[i] = {"info": EpisodeInfo(next(self._episode_ids), i), "len": 0,
                            "returns": {}, "policy": {}, "done": set()}
        return dict(obs)

    def _policy_of(self, i: int, aid) -> str:
        ep = self.episodes[i]
        pid = ep["policy"].get(aid)
        if pid is None:
            pid = ep["policy"][aid] = self.mapping_fn(aid, ep["info"])
            if pid not in self.modules:
                raise ValueError(f"policy_mapping_fn mapped agent {aid!r} to {pid!r}, which is "
                                 f"not a policy ({', '.join(map(repr, self.modules))})")
        return pid

    def set_weights(self, weights: dict) -> None:
        for pid, w in weights.items():
            self.modules[pid].set_state(w)

    def _policies(self, explore: bool, rows: int) -> dict:
        """{policy id: (act, value, env_actions)} over numpy arrays, as EnvRunner's."""
        out = {}
        for pid, module in self.modules.items():
            fast = NumpyPolicy.of(module, rows)
            if fast is not None:
                rng = self.rng
                act = (lambda obs, f=fast: f.explore(obs, rng)) if explore else \
                    (lambda obs, f=fast: (f.greedy(obs), None, None))
                out[pid] = (act, fast.value, fast.env_actions)
            else:
                out[pid] = torch_policy(module, explore)
        return out

    def sample(self, weights: dict | None, steps_per_env: int, explore: bool = True,
               epsilon: float = 0.0, obs_filter: dict | None = None) -> dict:
        """``steps_per_env`` steps of every copy; ``policy_batches``: {policy id: batch of
        ``[M, 1]`` columns}, plus the episodes that finished (whole-episode returns, and
        per module and per agent) and the env steps taken."""
        if weights is not None:
            self.set_weights(weights)
        policies = self._policies(explore, self.num_envs * 4)
        finished: list = []
        agent_steps = 0
        for _ in range(steps_per_env):
            groups: dict = {}
            for i, obs in enumerate(self.obs):
                for aid, o in obs.items():
                    groups.setdefault(self._policy_of(i, aid), []).append((i, aid, o))
            actions: list = [{} for _ in range(self.num_envs)]
            for pid, rows in groups.items():
                act, _, env_actions = policies[pid]
                a, logp, vf = act(np.stack([np.asarray(o, np.float32) for _, _, o in rows]))
                sent = env_actions(a)
                agent_steps += len(rows)
                for k, (i, aid, o) in enumerate(rows):
                    actions[i][aid] = sent[k].item() if sent[k].ndim == 0 else sent[k]
                    if explore:
                        run = self.runs[i].setdefault(aid, _Run(pid))
                        if run.pending:  # this observation follows its previous action
                            run.rows[-1][5] = vf[k]
                        run.rows.append([o, a[k], logp[k], vf[k], 0.0, None, None])
                        run.pending = True
            for i, env in enumerate(self.envs):
                if not actions[i] and not self.obs[i]:
                    raise RuntimeError(f"{type(env).__name__} gave no observations: no agent "
                                       f"can act (end the episode with terminateds['__all__'])")
                obs, rewards, terms, truncs, _ = env.step(actions[i])
                self._after_step(i, obs, rewards, terms, truncs, policies, explore, finished)
        out = {"episodes": [(e["return"], e["len"]) for e in finished],
               "module_episodes": [e["modules"] for e in finished],
               "agent_episodes": [e["agents"] for e in finished],
               "env_steps": steps_per_env * self.num_envs, "agent_steps": agent_steps}
        if explore:
            out["policy_batches"] = self._take_batches()
        return out

    def _after_step(self, i, obs, rewards, terms, truncs, policies, explore, finished):
        ep = self.episodes[i]
        ep["len"] += 1
        for aid, r in rewards.items():
            ep["returns"][aid] = ep["returns"].get(aid, 0.0) + float(r)
            run = self.runs[i].get(aid)
            if run is not None and run.rows:  # a reward counts towards its last action
                run.rows[-1][4] += float(r)
        ended = bool(terms.get(ALL) or truncs.get(ALL))
        # in a fixed order (the agents' first appearance), so batches are reproducible
        done_now = [a for a in ep["policy"] if terms.get(a) or truncs.get(a) or ended]
        for aid in (a for a in done_now if a not in ep["done"]):
            ep["done"].add(aid)
            run = self.runs[i].pop(aid, None)
            if run is None or not explore or not run.pending:
                continue
            run.pending = False
            last = run.rows[-1]
            if terms.get(aid) or (terms.get(ALL) and not truncs.get(aid)):
                last[5], last[6] = None, "terminated"  # no future
            else:  # cut off: its future is worth the value of its final observation
                final = obs.get(aid)
                last[5] = (policies[run.policy][1](np.asarray(final, np.float32)[None])[0]
                           if final is not None else last[3])
                last[6] = "truncated"
            self._closed.setdefault(run.policy, []).append(run.rows)
        if ended:
            modules: dict = {}
            for aid, ret in ep["returns"].items():
                pid = ep["policy"].get(aid)
                if pid is not None:
                    modules[pid] = modules.get(pid, 0.0) + ret
            finished.append({"return": float(sum(ep["returns"].values())), "len": ep["len"],
                             "modules": modules, "agents": dict(ep["returns"])})
            self.obs[i] = self._reset(i)
        else:
            self.obs[i] = {a: o for a, o in obs.items() if a not in ep["done"]}

    def _take_batches(self) -> dict:
        """Every closed run, and each open run but its pending last row, as columns."""
        runs, self._closed = self._closed, {}
        for per_env in self.runs:
            for run in per_env.values():
                keep = run.rows[:-1] if run.pending else run.rows
                if keep:
                    keep[-1][6] = "truncated"  # the batch ends: bootstrap from the next
                    runs.setdefault(run.policy, []).append(keep)
                run.rows = run.rows[-1:] if run.pending else []
        return {pid: _columns(rs) for pid, rs in runs.items()}

    def run_episodes(self, weights: dict | None, num_episodes: int,
                     obs_filter: dict | None = None) -> list:
        """Greedy episodes for evaluation: [(return, length)]."""
        if weights is not None:
            self.set_weights(weights)
        done: list = []
        while len(done) < num_episodes:
            done += self.sample(None, 50, explore=False)["episodes"]
        return done[:num_episodes]

    def pid(self) -> int:
        import os

        return os.getpid()

    def stop(self) -> None:
        for e in self.envs:
            e.close()


def _columns(runs: list) -> dict:
    rows = [r for run in runs for r in run]
    n = len(rows)
    ends = [r[6] for r in rows]
    col = np.zeros((n, 1), np.float32)
    out = {"obs": np.stack([np.asarray(r[0], np.float32) for r in rows])[:, None],
           "actions": np.stack([np.asarray(r[1]) for r in rows])[:, None],
           "action_logp": col + np.array([[r[2]] for r in rows], np.float32),
           "vf_preds": col + np.array([[r[3]] for r in rows], np.float32),
           "rewards": col + np.array([[r[4]] for r in rows], np.float32),
           "next_values": col + np.array([[0.0 if r[5] is None else r[5]] for r in rows],
                                         np.float32),
           "terminateds": np.array([[e == "terminated"] for e in ends]),
           "truncateds": np.array([[e == "truncated"] for e in ends]),
           "valid": np.ones((n, 1), bool)}
    return out
