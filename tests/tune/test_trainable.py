"""A class trainable used directly, outside Tune: train, save, restore."""

import os
import shutil
import tempfile

import pytest

from skate import tune

pytestmark = pytest.mark.skate_only


class Counter(tune.Trainable):
    def setup(self, config):
        self.n = config.get("start", 0)

    def step(self):
        self.n += 1
        return {"n": self.n}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.n}

    def load_checkpoint(self, checkpoint):
        self.n = checkpoint["n"]


def test_save_outside_tune_writes_a_temporary_folder_not_the_working_one(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Counter({"start": 5})
    c.train()
    c.train()
    path = c.save()
    try:
        assert os.listdir(tmp_path) == []  # nothing in the working folder
        assert os.path.dirname(path) == tempfile.gettempdir()
        assert os.path.basename(path).startswith("checkpoint_000002_")
        again = Counter({})
        again.restore(path)
        assert (again.n, again.iteration) == (7, 2)
        result = again.train()
        assert (result["n"], result["training_iteration"]) == (8, 3)
    finally:
        shutil.rmtree(path)


def test_save_into_a_given_folder_and_under_a_trial_dir(tmp_path):
    c = Counter({"start": 1})
    c.train()
    assert c.save(str(tmp_path / "mine")) == str(tmp_path / "mine")
    in_trial = Counter({"start": 1}, {"trial_dir": str(tmp_path / "trial")})
    in_trial.train()
    assert in_trial.save() == str(tmp_path / "trial" / "checkpoint_000001")
