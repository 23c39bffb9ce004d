"""ConcurrencyLimiter and Repeater (skate/tune/search/concurrency_limiter.py, repeater.py)."""

import pytest

from skate.tune.search.basic_variant import BasicVariantGenerator
from skate.tune.search.concurrency_limiter import ConcurrencyLimiter
from skate.tune.search.repeater import TRIAL_INDEX, Repeater
from skate.tune.search.sample import uniform
from skate.tune.search.searcher import Searcher

FINISHED = Searcher.FINISHED


class Recorder(Searcher):
    """A fake searcher: proposes {"i": n} up to ``limit`` times and records every call."""

    def __init__(self, limit=100, metric="loss", mode="min"):
        super().__init__(metric=metric, mode=mode)
        self.limit = limit
        self.suggested = []
        self.results = []
        self.completed = []
        self.properties = None

    def set_search_properties(self, metric, mode, config, **spec):
        self.properties = (metric, mode, config, spec)
        return True

    def suggest(self, trial_id):
        if len(self.suggested) >= self.limit:
            return FINISHED
        self.suggested.append(trial_id)
        return {"i": len(self.suggested) - 1}

    def on_trial_result(self, trial_id, result):
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result, error))


# ------------------------------------------------------------------ ConcurrencyLimiter


def test_limiter_returns_none_while_max_concurrent_trials_are_live():
    inner = Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=2)
    assert limiter.suggest("a") == {"i": 0} and limiter.suggest("b") == {"i": 1}
    assert limiter.suggest("c") is None and inner.suggested == ["a", "b"]
    limiter.on_trial_complete("a", {"loss": 1.0})
    assert inner.completed == [("a", {"loss": 1.0}, False)]
    assert limiter.suggest("c") == {"i": 2} and limiter.suggest("d") is None


def test_limiter_passes_finished_and_none_without_counting_them():
    inner = Recorder(limit=1)
    limiter = ConcurrencyLimiter(inner, max_concurrent=2)
    assert limiter.suggest("a") == {"i": 0}
    assert limiter.suggest("b") == FINISHED and limiter.live_trials == {"a"}


def test_limiter_batch_mode_reports_the_batch_together():
    inner = Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=2, batch=True)
    limiter.suggest("a"), limiter.suggest("b")
    limiter.on_trial_complete("a", {"loss": 1.0})
    assert inner.completed == [] and limiter.suggest("c") is None
    limiter.on_trial_complete("b", None, error=True)
    assert inner.completed == [("a", {"loss": 1.0}, False), ("b", None, True)]
    assert limiter.suggest("c") == {"i": 2}


def test_limiter_forwards_results_of_live_trials_and_properties():
    inner = Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=1)
    assert limiter.set_search_properties("acc", "max", {"x": 1}, num_samples=3) is True
    assert inner.properties == ("acc", "max", {"x": 1}, {"num_samples": 3})
    limiter.suggest("a")
    limiter.on_trial_result("a", {"loss": 3})
    limiter.on_trial_result("ghost", {"loss": 3})
    limiter.on_trial_complete("ghost")
    assert inner.results == [("a", {"loss": 3})] and inner.completed == []
    assert limiter.metric == "loss" and limiter.mode == "min"


def test_limiter_lets_a_self_capping_searcher_cap_itself():
    gen = BasicVariantGenerator(random_state=0)
    limiter = ConcurrencyLimiter(gen, max_concurrent=1)
    limiter.set_search_properties(None, None, {"x": uniform(0, 1)}, num_samples=3)
    assert isinstance(limiter.suggest("a"), dict) and limiter.suggest("b") is None
    limiter.on_trial_complete("a")
    assert isinstance(limiter.suggest("b"), dict)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_limiter_rejects_bad_max_concurrent(bad):
    with pytest.raises(ValueError, match="max_concurrent"):
        ConcurrencyLimiter(Recorder(), max_concurrent=bad)
    with pytest.raises(TypeError, match="Searcher"):
        ConcurrencyLimiter(object(), max_concurrent=1)


# ------------------------------------------------------------------ Repeater


def test_repeater_repeats_each_config_with_an_index():
    inner = Recorder(limit=2)
    rep = Repeater(inner, repeat=3)
    configs = [rep.suggest(f"t{i}") for i in range(7)]
    assert configs[:6] == [{"i": i // 3, TRIAL_INDEX: i % 3} for i in range(6)]
    assert configs[6] == FINISHED and inner.suggested == ["t0", "t3"]


def test_repeater_reports_the_mean_once_all_repeats_complete():
    inner = Recorder()
    rep = Repeater(inner, repeat=3)
    for i in range(3):
        rep.suggest(f"t{i}")
    rep.on_trial_complete("t1", {"loss": 1.0})
    rep.on_trial_complete("t0", {"loss": 2.0})
    assert inner.completed == []
    rep.on_trial_complete("t2", {"loss": 6.0})
    assert inner.completed == [("t0", {"loss": 3.0}, False)]


def test_repeater_leaves_failed_repeats_out_and_reports_total_failure():
    inner = Recorder()
    rep = Repeater(inner, repeat=2, set_index=False)
    a, _ = rep.suggest("a"), rep.suggest("b")
    assert TRIAL_INDEX not in a
    rep.on_trial_complete("a", None, error=True)
    rep.on_trial_complete("b", {"loss": 4.0})
    rep.suggest("c"), rep.suggest("d")
    rep.on_trial_complete("c", {"other": 1})
    rep.on_trial_complete("d", None, error=True)
    assert inner.completed == [("a", {"loss": 4.0}, False), ("c", None, True)]


def test_repeater_passes_none_through_and_forwards_properties():
    class Waiting(Recorder):
        def suggest(self, trial_id):
            return None

    inner = Waiting()
    rep = Repeater(inner, repeat=2)
    assert rep.suggest("a") is None
    assert rep.set_search_properties("m", "max", {}, num_samples=1) is True
    assert inner.properties[0] == "m"
    with pytest.raises(ValueError, match="repeat"):
        Repeater(inner, repeat=0)


def test_repeater_over_optuna_tells_the_study_the_mean():
    optuna = pytest.importorskip("optuna")
    from skate.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min", seed=0)
    rep = Repeater(search, repeat=2)
    a, b = rep.suggest("a"), rep.suggest("b")
    assert a["x"] == b["x"] and (a[TRIAL_INDEX], b[TRIAL_INDEX]) == (0, 1)
    rep.on_trial_complete("a", {"loss": 1.0})
    rep.on_trial_complete("b", {"loss": 3.0})
    assert [t.value for t in search._study.trials] == [2.0]
