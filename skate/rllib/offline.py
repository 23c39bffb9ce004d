"""Recorded experience: env runners write it as JSON lines; offline algorithms read it.

``config.offline_data(output=dir)`` makes every env runner append the steps it
samples to its own files in ``dir``; ``config.offline_data(input_=dir)`` trains
from them (BC, MARWIL) without stepping an environment.

The format, one JSON object per line, one line per environment step::

    {"eps_id": 1000003, "t": 17, "obs": [0.01, -0.2, 0.03, 0.1], "actions": 1,
     "rewards": 1.0, "terminateds": false, "truncateds": false,
     "new_obs": [0.01, -0.4, 0.03, 0.4], "action_logp": -0.69}

``eps_id`` names the episode (unique across the runners of a recording), ``t``
counts its steps from 0; ``actions`` is an int for a Discrete action space, a
list for a Box; ``new_obs`` is the observation after the step (for a finished
episode its true final one, not the next episode's first). Steps of one
episode are in order within a file. Files are ``<runner>-<pid>-<n>.jsonl``,
a new one every ``output_max_rows_per_file`` lines, each line flushed as it is
written so a runner killed mid-recording leaves only whole lines; beside
them ``spaces.json`` holds the observation and action spaces, so a dataset
can be trained from with no environment at all.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

SPACES_FILE = "spaces.json"
COLUMNS = ("eps_id", "t", "obs", "actions", "rewards", "terminateds", "truncateds",
           "new_obs", "action_logp")


def space_to_json(space) -> dict:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(),
                "dtype": str(space.dtype)}
    raise ValueError(f"offline data records Box and Discrete spaces, not {space}")


def space_from_json(d: dict):
    import gymnasium as gym

    if d["type"] == "Discrete":
        return gym.spaces.Discrete(d["n"])
    return gym.spaces.Box(np.array(d["low"], d["dtype"]), np.array(d["high"], d["dtype"]),
                          dtype=d["dtype"])


class JsonLinesWriter:
    """Appends sampled steps to ``<dir>/<runner>-<pid>-<n>.jsonl`` (see the module docstring).

    >>> import tempfile, numpy as np, gymnasium as gym
    >>> d = tempfile.mkdtemp()
    >>> w = JsonLinesWriter(d, worker_index=0, spaces=(gym.spaces.Box(-1, 1, (1,)),
    ...                                               gym.spaces.Discrete(2)))
    >>> batch = {"obs": np.zeros((2, 1, 1)), "next_obs": np.ones((2, 1, 1)),
    ...          "actions": np.array([[0], [1]]), "rewards": np.ones((2, 1)),
    ...          "terminateds": np.array([[False], [True]]), "truncateds": np.zeros((2, 1), bool),
    ...          "action_logp": np.zeros((2, 1)), "valid": np.ones((2, 1), bool)}
    >>> w.write(batch)
    2
    >>> [(r["t"], r["actions"], r["terminateds"]) for r in read_rows(d)]
    [(0, 0, False), (1, 1, True)]
    """

    def __init__(self, directory: str, worker_index: int, spaces: tuple,
                 max_rows_per_file: int = 100_000):
        os.makedirs(directory, exist_ok=True)
        self.dir, self.worker_index = directory, worker_index
        self.max_rows = int(max_rows_per_file)
        self._file, self._rows, self._files = None, 0, 0
        self._ids: np.ndarray | None = None  # per env copy: its episode's id
        self._t: np.ndarray | None = None
        self._next_id = worker_index * 1_000_000_000
        obs_space, act_space = spaces
        self._discrete = not hasattr(act_space, "shape") or act_space.shape == ()
        meta = {"observation_space": space_to_json(obs_space),
                "action_space": space_to_json(act_space)}
        tmp = os.path.join(directory, f".{SPACES_FILE}.{os.getpid()}")
        with open(tmp, "w") as f:  # every runner writes the same: the last rename wins
            json.dump(meta, f)
        os.replace(tmp, os.path.join(directory, SPACES_FILE))

    def _new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        return ids

    def write(self, batch: dict) -> int:
        """The batch's valid steps (``[T, N]`` arrays, as ``EnvRunner.sample`` returns);
        the number of lines written."""
        T, N = batch["rewards"].shape
        if self._ids is None:
            self._ids, self._t = self._new_ids(N), np.zeros(N, np.int64)
        lines = []
        ended = batch["terminateds"] | batch["truncateds"]
        for t in range(T):
            for i in range(N):
                if not batch["valid"][t, i]:
                    continue
                a = batch["actions"][t, i]
                lines.append(json.dumps({
                    "eps_id": int(self._ids[i]), "t": int(self._t[i]),
                    "obs": np.asarray(batch["obs"][t, i]).tolist(),
                    "actions": int(a) if self._discrete else np.asarray(a).tolist(),
                    "rewards": float(batch["rewards"][t, i]),
                    "terminateds": bool(batch["terminateds"][t, i]),
                    "truncateds": bool(batch["truncateds"][t, i]),
                    "new_obs": np.asarray(batch["next_obs"][t, i]).tolist(),
                    "action_logp": float(batch["action_logp"][t, i])}))
                self._t[i] += 1
                if ended[t, i]:
                    self._ids[i], self._t[i] = self._new_ids(1)[0], 0
        for line in lines:
            self._line(line)
        if self._file is not None:
            self._file.flush()
        return len(lines)

    def _line(self, line: str) -> None:
        if self._file is None or self._rows >= self.max_rows:
            if self._file is not None:
                self._file.close()
            name = f"{self.worker_index}-{os.getpid()}-{self._files}.jsonl"
            self._file = open(os.path.join(self.dir, name), "a")
            self._rows, self._files = 0, self._files + 1
        self._file.write(line + "\n")
        self._rows += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _files(directory: str) -> list:
    if not os.path.isdir(directory):
        raise ValueError(f"offline input {directory!r} is not a folder")
    files = sorted(glob.glob(os.path.join(directory, "*.jsonl")))
    if not files:
        raise ValueError(f"offline input {directory!r} holds no .jsonl files (record some "
                         f"with config.offline_data(output=...))")
    return files


def read_rows(directory: str):
    """Every recorded step, file by file, as dicts; a malformed line raises ValueError
    naming its file and line."""
    for path in _files(directory):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    missing = [c for c in COLUMNS if c not in row]
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON line ({e.msg})") from None
                if missing:
                    raise ValueError(f"{path}:{n}: missing {', '.join(missing)}")
                yield row


def read_spaces(directory: str) -> tuple:
    """(observation space, action space) the recording saved."""
    path = os.path.join(directory, SPACES_FILE)
    if not os.path.exists(path):
        raise ValueError(f"offline input {directory!r} has no {SPACES_FILE}; give the "
                         f"environment (config.environment(...)) so its spaces are known")
    with open(path) as f:
        meta = json.load(f)
    return space_from_json(meta["observation_space"]), space_from_json(meta["action_space"])


def load_dataset(directory: str, gamma: float) -> dict:
    """The recording as arrays, one row per step, with ``returns``: each step's discounted
    return to the end of what was recorded of its episode."""
    rows = list(read_rows(directory))
    rows.sort(key=lambda r: (r["eps_id"], r["t"]))
    data = {"obs": np.asarray([r["obs"] for r in rows], np.float32),
            "actions": np.asarray([r["actions"] for r in rows]),
            "rewards": np.asarray([r["rewards"] for r in rows], np.float32),
            "eps_id": np.asarray([r["eps_id"] for r in rows], np.int64)}
    data["returns"] = discounted_returns(data["rewards"], data["eps_id"], gamma)
    return data


def discounted_returns(rewards: np.ndarray, eps_id: np.ndarray, gamma: float) -> np.ndarray:
    """``sum_k gamma^k r_(t+k)`` within each episode (rows grouped by episode, in order).

    >>> discounted_returns(np.array([1.0, 1.0, 1.0]), np.array([7, 7, 8]), 0.5).tolist()
    [1.5, 1.0, 1.0]
    """
    out = np.zeros(len(rewards), np.float32)
    running = 0.0
    for k in range(len(rewards) - 1, -1, -1):
        if k == len(rewards) - 1 or eps_id[k] != eps_id[k + 1]:
            running = 0.0
        running = rewards[k] + gamma * running
        out[k] = running
    return out
