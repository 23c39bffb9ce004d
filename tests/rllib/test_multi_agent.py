"""Multi-agent: env stepping and the batches it makes (turn-taking agents, rewards between
turns, runs carried over between batches, agents that come and go), policy mapping,
per-policy metrics, both policies learning, checkpoints, the PettingZoo wrapper, and bad
settings."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib import (
    PPO,
    DQNConfig,
    MultiAgentEnv,
    MultiAgentEnvRunner,
    ParallelPettingZooEnv,
    PolicySpec,
    PPOConfig,
)
from skate.rllib.module import RLModule
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only

BOX1 = gym.spaces.Box(-100.0, 100.0, (1,), np.float32)


class TurnTaking(MultiAgentEnv):
    """x acts at even steps, y at odd ones, for 4 steps; each step pays the acting agent 1
    and the other 0.5 (so a reward reaches an agent between its turns)."""

    def __init__(self, config=None):
        self.possible_agents = ["x", "y"]
        self.observation_spaces = {a: BOX1 for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"x": np.array([0.0], np.float32)}, {}

    def step(self, actions):
        acting = "x" if self.t % 2 == 0 else "y"
        assert set(actions) == {acting}
        rewards = {acting: 1.0, ("y" if acting == "x" else "x"): 0.5}
        self.t += 1
        nxt = "x" if self.t % 2 == 0 else "y"
        obs = {nxt: np.array([float(self.t)], np.float32)} if self.t < 4 else {}
        return obs, rewards, {"__all__": self.t >= 4}, {"__all__": False}, {}


class Targets(MultiAgentEnv):
    """Each agent sees a one-hot target among 3 and is paid 1 for the right action: a's is
    the target, b's the next one (so a policy must know whose turn it is). a acts for 10
    steps; b arrives at step 3 and is done after step 7 (5 actions). Random play earns
    10/3 and 5/3; perfect play 10 and 5."""

    def __init__(self, config=None):
        self.possible_agents = ["a", "b"]
        box = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
        self.observation_spaces = {x: box for x in self.possible_agents}
        self.action_spaces = {x: gym.spaces.Discrete(3) for x in self.possible_agents}
        self.rng = np.random.default_rng()

    def _observe(self, agents):
        self.targets = {x: int(self.rng.integers(3)) for x in agents}
        return {x: np.eye(3, dtype=np.float32)[t] for x, t in self.targets.items()}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        return self._observe(["a"]), {}

    def step(self, actions):
        rewards = {x: float(actions[x] == (self.targets[x] + (x == "b")) % 3) for x in actions}
        self.t += 1
        terms = {"__all__": self.t >= 10}
        if self.t == 8:
            terms["b"] = True
        agents = ["a"] + (["b"] if 3 <= self.t < 8 else [])
        return (self._observe(agents) if self.t < 10 else {}), rewards, terms, \
            {"__all__": False}, {}


def _runner(env, policies, mapping, num_envs=1):
    modules = {pid: RLModule(BOX1, gym.spaces.Discrete(2), {"fcnet_hiddens": [8]})
               for pid in policies}
    config = {"env": env, "env_config": {}, "num_envs_per_env_runner": num_envs, "seed": 0,
              "policy_mapping_fn": mapping, "in_driver": True, "model": {}}
    return MultiAgentEnvRunner(config, 0, modules=modules), modules


def _value(module, x):
    with torch.no_grad():
        return float(module.value(torch.tensor([[x]], dtype=torch.float32))[0])


def test_turns_rewards_between_turns_and_episode_ends():
    runner, modules = _runner(TurnTaking, ["px", "py"], lambda aid, ep, **kw: "p" + aid)
    out = runner.sample(None, 4)
    x, y = out["policy_batches"]["px"], out["policy_batches"]["py"]
    # x: acted at t=0 (paid 1, then 0.5 at y's turn) and t=2 (1, then 0.5), then the end
    assert x["obs"][:, 0, 0].tolist() == [0.0, 2.0]
    assert x["rewards"][:, 0].tolist() == [1.5, 1.5]
    assert x["terminateds"][:, 0].tolist() == [False, True]
    assert not x["truncateds"].any()
    assert x["next_values"][:, 0] == pytest.approx([_value(modules["px"], 2.0), 0.0], abs=1e-5)
    # y's 0.5 at t=0 came before its first action: it counts in its return, not its rows
    assert y["obs"][:, 0, 0].tolist() == [1.0, 3.0]
    assert y["rewards"][:, 0].tolist() == [1.5, 1.0]
    assert y["terminateds"][:, 0].tolist() == [False, True]
    assert out["episodes"] == [(6.0, 4)]
    assert out["module_episodes"] == [{"px": 3.0, "py": 3.0}]
    assert out["agent_episodes"] == [{"x": 3.0, "y": 3.0}]
    assert (out["env_steps"], out["agent_steps"]) == (4, 4)


def test_a_run_still_waiting_for_its_next_turn_carries_over_to_the_next_batch():
    runner, modules = _runner(TurnTaking, ["px", "py"], lambda aid, ep, **kw: "p" + aid)
    first = runner.sample(None, 3)["policy_batches"]
    # x's first row is complete (cut by the batch's end: it bootstraps from its next value);
    # its second and y's first wait for their successors
    assert list(first) == ["px"]
    assert first["px"]["rewards"][:, 0].tolist() == [1.5]
    assert first["px"]["truncateds"][:, 0].tolist() == [True]
    assert first["px"]["next_values"][0, 0] == pytest.approx(_value(modules["px"], 2.0),
                                                             abs=1e-5)
    second = runner.sample(None, 1)
    assert second["policy_batches"]["px"]["obs"][:, 0, 0].tolist() == [2.0]
    assert second["policy_batches"]["px"]["terminateds"][:, 0].tolist() == [True]
    assert second["policy_batches"]["py"]["obs"][:, 0, 0].tolist() == [1.0, 3.0]
    assert second["policy_batches"]["py"]["rewards"][:, 0].tolist() == [1.5, 1.0]
    assert second["episodes"] == [(6.0, 4)]


def test_a_shared_policy_gets_every_agents_rows_and_mapping_is_once_per_agent_and_episode():
    calls = []

    def mapping(aid, episode, **kw):
        calls.append((aid, episode.id_))
        return "shared"

    runner, _ = _runner(TurnTaking, ["shared"], mapping)
    out = runner.sample(None, 8)  # two episodes
    assert sorted(out["policy_batches"]) == ["shared"]
    # one run after another: x's turns, then y's, in each episode
    assert out["policy_batches"]["shared"]["obs"][:, 0, 0].tolist() == [0, 2, 1, 3] * 2
    assert out["module_episodes"] == [{"shared": 6.0}] * 2
    assert len(calls) == 4 and len(set(calls)) == 4  # x and y, in each of two episodes


def test_agents_that_come_and_go():
    runner, _ = _runner(Targets, ["pa", "pb"], lambda aid, ep, **kw: "p" + aid)
    runner.modules = {pid: RLModule(Targets().observation_spaces["a"], gym.spaces.Discrete(3),
                                    {"fcnet_hiddens": [8]}) for pid in ("pa", "pb")}
    out = runner.sample(None, 10)
    a, b = out["policy_batches"]["pa"], out["policy_batches"]["pb"]
    assert len(a["obs"]) == 10 and len(b["obs"]) == 5
    assert b["terminateds"][:, 0].tolist() == [False] * 4 + [True]  # done at step 8
    assert a["terminateds"][:, 0].tolist() == [False] * 9 + [True]
    (ret, length), = out["episodes"]
    assert length == 10 and ret == a["rewards"].sum() + b["rewards"].sum()


def test_an_env_without_step_cannot_be_made():
    class NoStep(MultiAgentEnv):
        def reset(self, *, seed=None, options=None):
            return {}, {}

    with pytest.raises(TypeError, match="abstract method.*step"):
        NoStep()


def test_a_mapping_to_an_unknown_policy_is_refused():
    runner, _ = _runner(TurnTaking, ["px"], lambda aid, ep, **kw: "nope")
    with pytest.raises(ValueError, match="'nope'"):
        runner.sample(None, 1)


class FakeParallel:
    """The PettingZoo parallel API, without PettingZoo: two agents for 2 steps, one of which
    leaves after the first."""

    possible_agents = ["p", "q"]

    def observation_space(self, agent):
        return BOX1

    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = ["p", "q"], 0
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        terms = {a: (a == "q" or self.t >= 2) for a in self.agents}
        rewards = {a: 1.0 for a in self.agents}
        self.agents = [a for a in self.agents if not terms[a]]
        obs = {a: np.full(1, self.t, np.float32) for a in self.agents}
        return obs, rewards, terms, {a: False for a in terms}, {}


def test_the_pettingzoo_parallel_wrapper_ends_the_episode_when_every_agent_is_done():
    env = ParallelPettingZooEnv(FakeParallel())
    assert env.get_action_space("q") == gym.spaces.Discrete(2)
    obs, _ = env.reset()
    assert sorted(obs) == ["p", "q"]
    _, _, terms, truncs, _ = env.step({"p": 0, "q": 1})
    assert (terms["q"], terms["__all__"], truncs["__all__"]) == (True, False, False)
    _, _, terms, truncs, _ = env.step({"p": 0})
    assert (terms["__all__"], truncs["__all__"]) == (True, False)
    with pytest.raises(TypeError, match="no 'possible_agents'"):
        ParallelPettingZooEnv(object())


def _pettingzoo_guess():
    """A PettingZoo ParallelEnv (checked by PettingZoo's own API test): two players each
    guess a hidden bit shown to them, for 6 rounds; 1 for a right guess."""
    from pettingzoo import ParallelEnv

    class Guess(ParallelEnv):
        metadata = {"name": "guess_v0"}

        def __init__(self):
            self.possible_agents = ["p0", "p1"]
            self.rng = np.random.default_rng(0)

        OBS, ACT = gym.spaces.Box(0.0, 1.0, (2,), np.float32), gym.spaces.Discrete(2)

        def observation_space(self, agent):
            return self.OBS

        def action_space(self, agent):
            return self.ACT

        def _observe(self):
            self.bits = {a: int(self.rng.integers(2)) for a in self.agents}
            return {a: np.eye(2, dtype=np.float32)[b] for a, b in self.bits.items()}

        def reset(self, seed=None, options=None):
            if seed is not None:
                self.rng = np.random.default_rng(seed)
            self.agents, self.t = list(self.possible_agents), 0
            return self._observe(), {a: {} for a in self.agents}

        def step(self, actions):
            rewards = {a: float(actions[a] == self.bits[a]) for a in self.agents}
            self.t += 1
            done = self.t >= 6
            terms = {a: False for a in self.agents}
            truncs = {a: done for a in self.agents}
            infos = {a: {} for a in self.agents}
            obs = self._observe()
            if done:
                self.agents = []
            return obs, rewards, terms, truncs, infos

    return Guess


def test_a_pettingzoo_parallel_env_trains_through_the_wrapper():
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    guess = _pettingzoo_guess()
    parallel_api_test(guess(), num_cycles=20)
    algo = (PPOConfig().environment(lambda cfg: ParallelPettingZooEnv(guess()))
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
            .training(train_batch_size=240, lr=3e-3, num_epochs=5, minibatch_size=60)
            .multi_agent(policies={"shared"}).debugging(seed=0).build())
    try:
        for _ in range(10):
            result = algo.train()
        # random guessing earns 3 per player; the time limit truncates, so every episode
        # is 6 steps and ends in truncateds["__all__"]
        assert result["env_runners"]["episode_len_mean"] == 6
        assert result["env_runners"]["agent_episode_returns_mean"]["p0"] >= 5.0, result
        assert result["env_runners"]["module_episode_returns_mean"]["shared"] >= 10.0
    finally:
        algo.stop()


def _targets_config(runners, **training):
    return (PPOConfig().environment(Targets)
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
            .training(train_batch_size=400, lr=3e-3, num_epochs=5, minibatch_size=100,
                      **training)
            .multi_agent(policies={"pa", "pb"}, policy_mapping_fn=lambda aid, ep, **kw: "p" + aid)
            .debugging(seed=0))


def test_both_policies_learn_in_process():
    algo = _targets_config(0).build()
    try:
        for _ in range(15):
            result = algo.train()
        returns = result["env_runners"]["module_episode_returns_mean"]
        # random play: 3.33 and 1.67; learned: within 15% of perfect (10 and 5)
        assert returns["pa"] >= 8.5 and returns["pb"] >= 4.25, returns
        assert result["env_runners/module_episode_returns_mean/pa"] == returns["pa"]
        assert result["env_runners"]["agent_episode_returns_mean"] == {"a": returns["pa"],
                                                                        "b": returns["pb"]}
        assert sorted(result["learners"]) == ["pa", "pb"]
    finally:
        algo.stop()


def test_both_policies_learn_on_runner_actors_and_survive_a_checkpoint(tmp_path):
    _start_cluster(num_cpus=2)
    algo = _targets_config(2).build()
    try:
        for _ in range(15):
            result = algo.train()
        returns = result["env_runners"]["module_episode_returns_mean"]
        assert returns["pa"] >= 8.5 and returns["pb"] >= 4.25, returns
        path = algo.save(str(tmp_path / "ckpt"))
        path = getattr(path, "path", path)
    finally:
        algo.stop()
    restored = PPO.from_checkpoint(path, env=Targets)
    try:
        for pid in ("pa", "pb"):
            want = algo.get_module(pid).state_dict()
            got = restored.get_module(pid).state_dict()
            assert all(torch.equal(want[k], got[k]) for k in want)
        assert restored.evaluate()["env_runners"]["episode_return_mean"] >= 13.5
    finally:
        restored.stop()


def test_a_policy_not_in_policies_to_train_keeps_its_weights():
    algo = _targets_config(0).multi_agent(policies_to_train=["pa"]).build()
    try:
        before = {k: v.clone() for k, v in algo.get_module("pb").state_dict().items()}
        result = algo.train()
        assert list(result["learners"]) == ["pa"]
        after = algo.get_module("pb").state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    finally:
        algo.stop()


def test_explicit_policy_spaces_and_spaces_it_cannot_infer():
    cfg = (PPOConfig().environment(Targets).env_runners(num_env_runners=0)
           .multi_agent(policies={"pa": None, "spare": PolicySpec()},
                        policy_mapping_fn=lambda aid, ep, **kw: "pa"))
    with pytest.raises(ValueError, match="policy 'spare'.*PolicySpec"):
        cfg.build()
    box = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    algo = cfg.multi_agent(policies={"pa": None, "spare": PolicySpec(box, gym.spaces.Discrete(3))}
                           ).build()
    algo.stop()


@pytest.mark.parametrize("make, error, match", [
    (lambda: DQNConfig().environment(Targets).env_runners(num_env_runners=0)
     .multi_agent(policies={"p"}).build(), ValueError, "PPO"),
    (lambda: PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
     .multi_agent(policies={"p"}).build(), TypeError, "needs a MultiAgentEnv"),
    (lambda: PPOConfig().environment(Targets).env_runners(num_env_runners=0)
     .multi_agent(policies={"p", "q"}).build(), ValueError, "policy_mapping_fn"),
    (lambda: PPOConfig().environment(Targets).env_runners(num_env_runners=0)
     .multi_agent(policies={"p"}, policy_mapping_fn=lambda a, e, **k: "z").build(),
     ValueError, "'z'"),
    (lambda: PPOConfig().multi_agent(policies={"p"}, policies_to_train=["q"]), ValueError,
     "not in policies"),
    (lambda: PPOConfig().multi_agent(policies=[]), ValueError, "non-empty"),
    (lambda: PPOConfig().multi_agent(policy_mapping_fn="p"), TypeError, "callable"),
    (lambda: PPOConfig().multi_agent(policies={"p"}, policy_map=1), TypeError, "policy_map"),
])
def test_bad_multi_agent_settings(make, error, match):
    with pytest.raises(error, match=match):
        make()
