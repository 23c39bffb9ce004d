"""Offline RL: recording (what runners write is what they sampled, file by file), reading
(order, returns, errors naming the line), MARWIL's loss against a reference, BC and MARWIL
learning from an expert's recording with no environment, and bad settings."""

import glob
import json
import os
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib import BC, BCConfig, MARWILConfig, PPOConfig
from skate.rllib.marwil import MAX_WEIGHT, marwil_loss
from skate.rllib.offline import (
    COLUMNS,
    JsonLinesWriter,
    discounted_returns,
    load_dataset,
    read_rows,
    read_spaces,
)
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only


def _lines(folder):
    return [json.loads(line) for path in sorted(glob.glob(os.path.join(folder, "*.jsonl")))
            for line in open(path)]


def test_what_a_runner_records_is_what_it_sampled(tmp_path):
    out = tmp_path / "rec"
    # 4 CartPole copies step through the vectorized entry point, whose reset steps are
    # not real steps: they must not be recorded
    algo = (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
            .offline_data(output=str(out)).debugging(seed=0).build())
    try:
        batches = algo.sample(400)
    finally:
        algo.stop()
    b, = batches
    T, N = b["rewards"].shape
    want = [(t, i) for t in range(T) for i in range(N) if b["valid"][t, i]]
    assert len(want) < T * N  # some steps only reset an env
    rows = list(read_rows(str(out)))
    assert len(rows) == len(want) == b["env_steps"]
    for row, (t, i) in zip(rows, want):
        assert sorted(row) == sorted(COLUMNS)
        assert np.array_equal(np.float32(row["obs"]), b["obs"][t, i])
        assert np.array_equal(np.float32(row["new_obs"]), b["next_obs"][t, i])
        assert row["actions"] == int(b["actions"][t, i])
        assert (row["rewards"], row["terminateds"], row["truncateds"]) == (
            float(b["rewards"][t, i]), bool(b["terminateds"][t, i]), bool(b["truncateds"][t, i]))
        assert np.float32(row["action_logp"]) == b["action_logp"][t, i]
    # each episode's steps are numbered from 0, and only its last one ends it
    by_episode: dict = {}
    for row in rows:
        by_episode.setdefault(row["eps_id"], []).append(row)
    for steps in by_episode.values():
        assert [r["t"] for r in steps] == list(range(len(steps)))
        assert not any(r["terminateds"] or r["truncateds"] for r in steps[:-1])
    finished = [s for s in by_episode.values() if s[-1]["terminateds"] or s[-1]["truncateds"]]
    assert sorted(len(s) for s in finished) == sorted(n for _, n in b["episodes"])
    obs_space, act_space = read_spaces(str(out))
    assert act_space == gym.spaces.Discrete(2) and obs_space.shape == (4,)


def test_runner_actors_write_their_own_files_with_distinct_episodes(tmp_path):
    _start_cluster(num_cpus=2)
    out = tmp_path / "rec"
    algo = (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
            .training(train_batch_size=400, num_epochs=1)
            .offline_data(output=str(out), output_max_rows_per_file=50)
            .debugging(seed=0).build())
    try:
        result = algo.train()
    finally:
        algo.stop()
    files = sorted(os.path.basename(p) for p in glob.glob(str(out / "*.jsonl")))
    assert {f.split("-")[0] for f in files} == {"1", "2"}  # runner 1's and runner 2's
    assert all(sum(1 for _ in open(out / f)) <= 50 for f in files)
    assert len(files) >= 2 * (400 // 2 // 50)
    rows = _lines(str(out))
    assert len(rows) == result["num_env_steps_sampled_lifetime"]
    episodes_of = {r: {row["eps_id"] for f in files if f.startswith(f"{r}-")
                       for row in map(json.loads, open(out / f))} for r in ("1", "2")}
    assert not episodes_of["1"] & episodes_of["2"]


def test_the_dataset_is_in_episode_order_with_discounted_returns(tmp_path):
    w = JsonLinesWriter(str(tmp_path), 0, (gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2)))
    # two envs side by side: their steps interleave in the file
    batch = {"obs": np.arange(6, dtype=np.float32).reshape(3, 2, 1),
             "next_obs": np.zeros((3, 2, 1), np.float32), "actions": np.ones((3, 2), int),
             "rewards": np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0]], np.float32),
             "terminateds": np.array([[False, True], [False, False], [True, False]]),
             "truncateds": np.zeros((3, 2), bool), "action_logp": np.zeros((3, 2)),
             "valid": np.ones((3, 2), bool)}
    assert w.write(batch) == 6
    w.close()
    data = load_dataset(str(tmp_path), gamma=0.5)
    # env 0: one episode of 3 steps; env 1: an episode of 1 step, then one of 2 (cut off)
    assert data["obs"][:, 0].tolist() == [0, 2, 4, 1, 3, 5]
    assert data["returns"].tolist() == [1.75, 1.5, 1.0, 10.0, 15.0, 10.0]
    assert discounted_returns(np.ones(3), np.array([1, 2, 2]), 0.9).tolist() == \
        pytest.approx([1.0, 1.9, 1.0])


def test_unreadable_recordings_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        list(read_rows(str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="no .jsonl files"):
        list(read_rows(str(tmp_path)))
    (tmp_path / "0-1-0.jsonl").write_text('{"eps_id": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"0-1-0.jsonl:1: missing t, obs"):
        list(read_rows(str(tmp_path)))
    (tmp_path / "0-1-0.jsonl").write_text(json.dumps({c: 0 for c in COLUMNS}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"0-1-0.jsonl:2: not a JSON line"):
        list(read_rows(str(tmp_path)))


def test_marwil_loss_on_a_fixed_batch():
    logp = torch.tensor([-0.1, -2.0, -0.5], requires_grad=True)
    values = torch.tensor([1.0, 5.0, 0.0], requires_grad=True)
    returns = torch.tensor([3.0, 1.0, 100.0])
    c2 = 4.0  # the norm: sqrt(4) = 2
    total, m = marwil_loss(logp, values, returns, c2, beta=1.0, vf_coeff=0.5)
    adv = np.array([2.0, -4.0, 100.0])
    w = np.minimum(np.exp(adv / 2.0), MAX_WEIGHT)  # the last is capped
    want_policy = -(w * np.array([-0.1, -2.0, -0.5])).mean()
    want_vf = 0.5 * (adv ** 2).mean()
    assert float(m["policy_loss"]) == pytest.approx(want_policy, rel=1e-5)
    assert float(m["vf_loss"]) == pytest.approx(want_vf, rel=1e-5)
    assert float(total.detach()) == pytest.approx(want_policy + 0.5 * want_vf, rel=1e-5)
    total.backward()  # the weights are constants: d/d logp is -w / n
    assert logp.grad.tolist() == pytest.approx((-w / 3).tolist(), rel=1e-5)
    bc, m = marwil_loss(logp, values, returns, c2, beta=0.0, vf_coeff=0.5)
    assert float(bc.detach()) == pytest.approx(np.mean([0.1, 2.0, 0.5]), rel=1e-6)
    assert list(m) == ["policy_loss"]


def _one(x, dtype=None):
    """One step of one env as a ``[T=1, N=1, ...]`` array."""
    return np.asarray(x, dtype)[None, None]


def _expert_recording(folder, episodes=20):
    """A CartPole controller that balances (500 every episode), recorded with the writer."""
    env = gym.make("CartPole-v1")
    w = JsonLinesWriter(str(folder), 0, (env.observation_space, env.action_space))
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        done = False
        while not done:
            a = int(obs[2] + 0.5 * obs[3] > 0)
            nxt, r, term, trunc, _ = env.step(a)
            w.write({"obs": _one(obs, np.float32), "actions": _one(a),
                     "next_obs": _one(nxt, np.float32), "rewards": _one(r, np.float32),
                     "terminateds": _one(term), "truncateds": _one(trunc),
                     "action_logp": _one(0.0), "valid": _one(True)})
            obs, done = nxt, term or trunc
    w.close()
    env.close()


def _greedy_returns(algo, episodes=5):
    env = gym.make("CartPole-v1")
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=100 + ep)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(int(algo.compute_single_action(obs)))
            total, done = total + r, term or trunc
        out.append(total)
    return float(np.mean(out))


def test_bc_learns_the_experts_policy_with_no_environment(tmp_path):
    _expert_recording(tmp_path / "expert")
    assert sum(1 for _ in read_rows(str(tmp_path / "expert"))) == 20 * 500
    algo = (BCConfig().offline_data(input_=str(tmp_path / "expert"))  # no environment given
            .training(lr=1e-3, train_batch_size=500).debugging(seed=0).build())
    try:
        # the expert's 500, within 10%, in at most 10 passes over its 10,000 steps
        for passes in range(1, 11):
            result = algo.train()
            if _greedy_returns(algo) >= 450:
                break
        assert _greedy_returns(algo) >= 450
        assert result["num_env_steps_trained_lifetime"] == passes * 10_000
        assert result["num_env_steps_sampled_lifetime"] == 0
        path = algo.save(str(tmp_path / "ckpt"))
        path = getattr(path, "path", path)
    finally:
        algo.stop()
    again = BC.from_checkpoint(path)
    try:
        assert _greedy_returns(again) >= 450
        assert again.train()["num_env_steps_trained_lifetime"] == (passes + 1) * 10_000
    finally:
        again.stop()
    # acting needs no recording: with it gone, the environment gives the spaces
    shutil.rmtree(tmp_path / "expert")
    acting = BC.from_checkpoint(path, env="CartPole-v1")
    try:
        assert _greedy_returns(acting) >= 450
        with pytest.raises(ValueError, match="is not a folder"):
            acting.train()
    finally:
        acting.stop()
    with pytest.raises(ValueError, match="give the environment"):
        BC.from_checkpoint(path)


def test_marwil_learns_and_is_evaluated_in_the_environment(tmp_path):
    _expert_recording(tmp_path / "expert", episodes=10)
    algo = (MARWILConfig().environment("CartPole-v1")
            .offline_data(input_=str(tmp_path / "expert"))
            .training(lr=1e-3, train_batch_size=500)
            .evaluation(evaluation_interval=1, evaluation_duration=5)
            .debugging(seed=0).build())
    try:
        for _ in range(15):  # passes over the expert's 5,000 steps
            result = algo.train()
            if result["evaluation"]["env_runners"]["episode_return_mean"] >= 450:
                break
        assert result["evaluation"]["env_runners"]["episode_return_mean"] >= 450
        assert result["learners"]["default_policy"]["vf_loss"] > 0
    finally:
        algo.stop()


@pytest.mark.parametrize("make, error, match", [
    (lambda p: BCConfig().environment("CartPole-v1").build(), ValueError,
     r"offline_data\(input_=folder\)"),
    (lambda p: BCConfig().offline_data(input_=p).evaluation(evaluation_interval=1).build(),
     ValueError, "evaluation runs the policy in its environment"),
    (lambda p: PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
     .environment(normalize_observations=True).offline_data(output=p).build(),
     ValueError, "without observation normalization"),
    (lambda p: BCConfig().offline_data(input_=3), TypeError, "folder path"),
    (lambda p: PPOConfig().offline_data(output_max_rows_per_file=0), ValueError, ">= 1"),
    (lambda p: PPOConfig().offline_data(outptu=p), TypeError, "unknown setting 'outptu'"),
])
def test_bad_offline_settings(tmp_path, make, error, match):
    _expert_recording(tmp_path, episodes=1)
    with pytest.raises(error, match=match):
        make(str(tmp_path))
