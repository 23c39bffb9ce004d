"""``MultiAgentEnv``: an environment with several agents, RLlib's dict-keyed interface.

Each call takes and returns dicts keyed by agent id: ``reset`` gives the
observations (and infos) of the agents that act first, ``step(actions)`` takes
an action for every agent that was just observed and returns observations,
rewards, ``terminateds``, ``truncateds`` and infos. ``terminateds["__all__"]``
(or ``truncateds["__all__"]``) ends the episode. Agents may come and go: an
agent acts at a step only when it is in the observations, an agent whose own
``terminateds[id]`` is True is done for the episode, and a reward may reach an
agent that is not acting this step (it counts towards its last action).

``ParallelPettingZooEnv`` wraps a PettingZoo parallel environment (its
``possible_agents``, ``observation_space(agent)``, ``action_space(agent)``,
``reset`` and ``step`` API) as one of these; PettingZoo itself is not needed
to use the wrapper on an object with that API.
"""

from __future__ import annotations

import abc

ALL = "__all__"


class MultiAgentEnv(abc.ABC):
    """Base class of multi-agent environments (subclass it, as with ``gymnasium.Env``).

    A subclass sets ``possible_agents`` (every id that can appear) and, per agent,
    ``observation_spaces`` / ``action_spaces`` (dicts), and defines ``reset`` and
    ``step`` over dicts (a subclass without them cannot be instantiated).

    >>> import gymnasium as gym
    >>> class Echo(MultiAgentEnv):
    ...     def __init__(self, config=None):
    ...         self.possible_agents = ["a", "b"]
    ...         box = gym.spaces.Box(0.0, 1.0, (1,))
    ...         self.observation_spaces = {a: box for a in self.possible_agents}
    ...         self.action_spaces = {a: gym.spaces.Discrete(2) for a in self.possible_agents}
    ...     def reset(self, *, seed=None, options=None):
    ...         return {a: [0.0] for a in self.possible_agents}, {}
    ...     def step(self, actions):
    ...         rewards = {a: float(act) for a, act in actions.items()}
    ...         return {}, rewards, {"__all__": True}, {"__all__": False}, {}
    >>> env = Echo()
    >>> obs, _ = env.reset()
    >>> env.step({"a": 1, "b": 0})[1]
    {'a': 1.0, 'b': 0.0}
    >>> env.get_action_space("b")
    Discrete(2)
    """

    possible_agents: list = []
    observation_spaces: dict = {}
    action_spaces: dict = {}

    @abc.abstractmethod
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """(observations, infos) of the agents that act first."""

    @abc.abstractmethod
    def step(self, action_dict: dict) -> tuple:
        """(observations, rewards, terminateds, truncateds, infos) after ``action_dict``."""

    def get_observation_space(self, agent_id):
        return self.observation_spaces[agent_id]

    def get_action_space(self, agent_id):
        return self.action_spaces[agent_id]

    def close(self) -> None:
        pass


class ParallelPettingZooEnv(MultiAgentEnv):
    """A PettingZoo parallel environment as a ``MultiAgentEnv``: the same dicts, plus the
    ``"__all__"`` entries (the episode ends once every agent is done, PettingZoo's rule).

    >>> from skate.rllib import ParallelPettingZooEnv
    >>> ParallelPettingZooEnv  # doctest: +ELLIPSIS
    <class '...ParallelPettingZooEnv'>
    """

    def __init__(self, env):
        for name in ("possible_agents", "observation_space", "action_space", "reset", "step"):
            if not hasattr(env, name):
                raise TypeError(f"ParallelPettingZooEnv needs a PettingZoo parallel env; "
                                f"{type(env).__name__} has no {name!r}")
        self.par_env = env
        self.possible_agents = list(env.possible_agents)
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        self._live: set = set()

    def reset(self, *, seed=None, options=None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._live = set(obs)
        return obs, infos

    def step(self, action_dict):
        obs, rewards, terms, truncs, infos = self.par_env.step(action_dict)
        terms, truncs = dict(terms), dict(truncs)
        self._live -= {a for a in set(terms) | set(truncs)
                       if terms.get(a) or truncs.get(a)}
        done = not self._live or not getattr(self.par_env, "agents", True)
        terms[ALL] = done and all(terms.get(a, False) for a in terms if a != ALL)
        truncs[ALL] = done and not terms[ALL]
        return obs, rewards, terms, truncs, infos

    def close(self):
        close = getattr(self.par_env, "close", None)
        if close is not None:
            close()
