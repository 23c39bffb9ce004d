"""Offline RL: record a trained PPO policy's experience on CartPole, then clone it with BC.

1. PPO learns CartPole (a 100-episode mean of 475).
2. A second PPO with ``offline_data(output=folder)`` and the trained weights samples
   20,000 steps; its env runner writes each one as a JSON line (skate/rllib/offline.py
   documents the format).
3. BC trains from the folder alone (no environment: the spaces come from the
   recording) and is then run greedily in CartPole beside PPO.

Run: python examples/rllib/offline_bc.py
"""

import sys
import tempfile

import gymnasium as gym
import numpy as np

from skate.rllib import PPO, BCConfig


def greedy_return(algo, episodes=10) -> float:
    env = gym.make("CartPole-v1")
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=1000 + ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(algo.compute_single_action(obs)))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main():
    with tempfile.TemporaryDirectory(prefix="cartpole-ppo-") as folder:
        ok = record_and_clone(folder)
    if not ok:
        sys.exit("BC reached less than 90% of PPO's return")


def record_and_clone(folder: str) -> bool:
    ppo = PPO.default_config_for("CartPole-v1").debugging(seed=0).build()
    while ppo.train()["env_runners"]["episode_return_mean"] < 475:
        pass
    recorder = (PPO.default_config_for("CartPole-v1").offline_data(output=folder)
                .debugging(seed=1).build())
    recorder.get_module().load_state_dict(ppo.get_module().state_dict())
    steps = sum(b["env_steps"] for b in recorder.sample(20_000))
    recorder.stop()
    print(f"recorded {steps} steps of the trained PPO policy in {folder}")

    bc = (BCConfig().offline_data(input_=folder)
          .training(lr=1e-3, train_batch_size=512).debugging(seed=0).build())
    for _ in range(10):  # passes over the recording
        bc.train()
        if greedy_return(bc, 3) >= 475:
            break
    ppo_return, bc_return = greedy_return(ppo), greedy_return(bc)
    print(f"greedy return over 10 episodes: PPO {ppo_return:.1f}, BC {bc_return:.1f} "
          f"({bc_return / ppo_return:.0%} of PPO's)")
    ppo.stop()
    bc.stop()
    return bc_return >= 0.9 * ppo_return


if __name__ == "__main__":
    main()
