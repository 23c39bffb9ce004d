"""The Searcher contract (skate/tune/search/searcher.py), run over every implementation:
suggest/complete until FINISHED or a budget, and save -> restore into a fresh
instance continues exactly as the original does."""

import copy

import pytest

from skate.tune.search.basic_variant import BasicVariantGenerator
from skate.tune.search.concurrency_limiter import ConcurrencyLimiter
from skate.tune.search.repeater import Repeater
from skate.tune.search.sample import randint, uniform
from skate.tune.search.searcher import Searcher

FINISHED = Searcher.FINISHED
SPACE = {"x": uniform(-2, 2), "n": {"k": randint(0, 4)}, "const": "c"}
NUM_SAMPLES = 6
BUDGET = 40  # driver steps; searchers that never finish stop here


def optuna_search():
    optuna = pytest.importorskip("optuna")
    from skate.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(seed=0)


IMPLEMENTATIONS = {
    "basic_variant": lambda: BasicVariantGenerator(random_state=0),
    "basic_variant_capped": lambda: BasicVariantGenerator(max_concurrent=1, random_state=0),
    "optuna": optuna_search,
    "limiter(optuna)": lambda: ConcurrencyLimiter(optuna_search(), max_concurrent=1),
    "limiter(basic, batch)": lambda: ConcurrencyLimiter(
        BasicVariantGenerator(random_state=1), max_concurrent=2, batch=True
    ),
    "repeater(optuna)": lambda: Repeater(optuna_search(), repeat=2),
    "repeater(basic)": lambda: Repeater(BasicVariantGenerator(random_state=2), repeat=3),
}


def loss(config):
    return (config["x"] - 0.5) ** 2 + config["n"]["k"]


class Driver:
    """A deterministic stand-in for the controller: keeps up to two trials live,
    asks for more while it can, and completes the oldest when it cannot."""

    def __init__(self):
        self.counter = 0
        self.live = []  # (trial_id, config), oldest first
        self.log = []  # every suggestion, in order
        self.finished = False

    def step(self, searcher):
        if len(self.live) < 2 and not self.finished:
            trial_id = f"t{self.counter}"
            self.counter += 1
            suggestion = searcher.suggest(trial_id)
            self.log.append(suggestion)
            if isinstance(suggestion, dict):
                self.live.append((trial_id, suggestion))
                searcher.on_trial_result(
                    trial_id, {"loss": loss(suggestion), "training_iteration": 1}
                )
                return
            assert suggestion is None or suggestion == FINISHED
            self.finished = suggestion == FINISHED
        if self.live:
            trial_id, config = self.live.pop(0)
            searcher.on_trial_complete(trial_id, {"loss": loss(config), "training_iteration": 1})

    def done(self):
        return self.finished and not self.live

    def run(self, searcher, steps):
        for _ in range(steps):
            if self.done():
                break
            self.step(searcher)
        return self


def configured(make):
    searcher = make()
    searcher.set_search_properties("loss", "min", copy.deepcopy(SPACE), num_samples=NUM_SAMPLES)
    return searcher


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make(request):
    return IMPLEMENTATIONS[request.param]


def test_suggest_complete_loop_gives_valid_configs_until_finished_or_budget(make):
    searcher = configured(make)
    driver = Driver().run(searcher, BUDGET)
    configs = [s for s in driver.log if isinstance(s, dict)]
    assert configs, "no config suggested"
    for config in configs:
        assert -2 <= config["x"] <= 2 and config["n"]["k"] in range(4) and config["const"] == "c"
    if driver.finished:
        assert driver.done()
        assert searcher.suggest("after") == FINISHED
    if isinstance(searcher, BasicVariantGenerator) or isinstance(
        getattr(searcher, "searcher", None), BasicVariantGenerator
    ):
        repeat = getattr(searcher, "repeat", 1)
        assert driver.finished and len(configs) == NUM_SAMPLES * repeat


@pytest.mark.parametrize("save_after", [0, 5, 11])
def test_save_restore_into_a_fresh_instance_continues_identically(make, save_after, tmp_path):
    original = configured(make)
    driver = Driver().run(original, save_after)
    path = str(tmp_path / "searcher.pkl")
    original.save(path)

    fresh = make()  # not configured: everything comes from the checkpoint
    fresh.restore(path)
    twin = copy.deepcopy(driver)
    driver.run(original, BUDGET)
    twin.run(fresh, BUDGET)
    assert twin.log == driver.log
    assert any(isinstance(s, dict) for s in driver.log)


def test_get_state_set_state_in_memory(make):
    original = configured(make)
    driver = Driver().run(original, 7)
    fresh = make()
    fresh.set_state(original.get_state())
    twin = copy.deepcopy(driver)
    assert twin.run(fresh, 15).log == driver.run(original, 15).log


def test_save_to_dir_and_restore_from_dir(tmp_path):
    searcher = configured(IMPLEMENTATIONS["basic_variant"])
    searcher.suggest("a")
    searcher.save_to_dir(str(tmp_path), session_str="s1")
    assert (tmp_path / "searcher-state-s1.pkl").exists()
    fresh = BasicVariantGenerator()
    fresh.restore_from_dir(str(tmp_path))
    assert fresh.suggest("b") == searcher.suggest("b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="searcher state"):
        fresh.restore_from_dir(str(tmp_path / "empty"))


def test_base_class_contract():
    with pytest.raises(ValueError, match="'min' or 'max'"):
        Searcher(metric="loss", mode="minimize")
    base = Searcher(metric="loss", mode="max")
    assert (base.metric, base.mode) == ("loss", "max")
    assert base.set_search_properties("m", "min", {}) is False
    assert base.set_max_concurrency(2) is False
    base.on_trial_result("t", {})  # ignored by default
    with pytest.raises(NotImplementedError):
        base.suggest("t")
    with pytest.raises(NotImplementedError):
        base.on_trial_complete("t")
    with pytest.raises(NotImplementedError):
        base.add_evaluated_point({"x": 1}, 1.0)
