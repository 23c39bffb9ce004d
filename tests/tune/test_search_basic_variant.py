"""Grid/random search as a Searcher (skate/tune/search/basic_variant.py)."""

import pytest

from skate.tune.search.basic_variant import BasicVariantGenerator
from skate.tune.search.sample import grid_search, randint, uniform
from skate.tune.search.searcher import Searcher

FINISHED = Searcher.FINISHED


def make(space, num_samples=1, **kwargs):
    gen = BasicVariantGenerator(**kwargs)
    assert gen.set_search_properties("loss", "min", space, num_samples=num_samples) is True
    return gen


def drain(gen, limit=1000):
    out = []
    for i in range(limit):
        config = gen.suggest(f"t{i}")
        if config == FINISHED:
            return out
        assert config is not None
        out.append(config)
        gen.on_trial_complete(f"t{i}", {"loss": 0.0})
    raise AssertionError("never FINISHED")


def test_grid_times_num_samples_then_finished():
    space = {"a": grid_search([1, 2, 3]), "b": grid_search([0, 1]), "r": uniform(0, 1)}
    gen = make(space, num_samples=4, random_state=0)
    assert gen.total_samples == 24
    out = drain(gen)
    assert len(out) == 24
    # each round is the whole grid again, with fresh samples
    assert [(c["a"], c["b"]) for c in out[:6]] == [(c["a"], c["b"]) for c in out[6:12]]
    assert len({c["r"] for c in out}) == 24
    assert gen.suggest("again") == FINISHED and gen.is_finished()


def test_random_only_space_yields_num_samples_configs():
    out = drain(make({"x": randint(0, 10**9), "k": "v"}, num_samples=5, random_state=1))
    assert len(out) == 5 and len({c["x"] for c in out}) == 5 and all(c["k"] == "v" for c in out)


def test_deterministic_given_random_state():
    space = {"x": uniform(0, 1), "g": grid_search([1, 2])}
    assert drain(make(space, 3, random_state=5)) == drain(make(space, 3, random_state=5))
    assert drain(make(space, 3, random_state=5)) != drain(make(space, 3, random_state=6))


def test_points_to_evaluate_come_first_merged_over_the_space_and_count_as_samples():
    space = {"x": uniform(0, 1), "y": uniform(10, 20), "g": grid_search(["a", "b"]), "c": 7}
    points = [{"x": 0.5}, {"x": 0.25, "y": 15.0, "g": "z"}]
    gen = make(space, num_samples=3, points_to_evaluate=points, random_state=0)
    out = drain(gen)
    # point 1 expands over the grid (2), point 2 fixes the grid (1), one free round (2)
    assert len(out) == gen.total_samples == 5
    assert [c["x"] for c in out[:2]] == [0.5, 0.5] and [c["g"] for c in out[:2]] == ["a", "b"]
    assert all(10 <= c["y"] < 20 and c["c"] == 7 for c in out)
    assert out[2] == {"x": 0.25, "y": 15.0, "g": "z", "c": 7}
    assert all(c["x"] not in (0.5, 0.25) for c in out[3:])


def test_all_points_run_even_past_num_samples():
    points = [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}]
    out = drain(make({"x": uniform(0, 1)}, num_samples=2, points_to_evaluate=points))
    assert [c["x"] for c in out] == [0.1, 0.2, 0.3]


def test_bad_points_fail_at_setup():
    gen = BasicVariantGenerator(points_to_evaluate=[{"nope": 1}])
    with pytest.raises(ValueError, match="`nope`"):
        gen.set_search_properties(None, None, {"x": uniform(0, 1)}, num_samples=1)
    with pytest.raises(TypeError, match="list of config dicts"):
        BasicVariantGenerator(points_to_evaluate={"x": 1})


def test_max_concurrent_holds_suggestions_until_trials_complete():
    gen = make({"x": uniform(0, 1)}, num_samples=4, max_concurrent=2, random_state=0)
    assert isinstance(gen.suggest("a"), dict) and isinstance(gen.suggest("b"), dict)
    assert gen.suggest("c") is None
    gen.on_trial_complete("a")
    assert isinstance(gen.suggest("c"), dict) and gen.suggest("d") is None
    gen.on_trial_complete("b", error=True)
    gen.on_trial_complete("c")
    assert isinstance(gen.suggest("d"), dict) and gen.suggest("e") == FINISHED


def test_set_max_concurrency_is_honoured():
    gen = make({"x": uniform(0, 1)}, num_samples=3)
    assert gen.set_max_concurrency(1) is True
    assert isinstance(gen.suggest("a"), dict) and gen.suggest("b") is None


def test_constant_grid_search():
    out = drain(
        make(
            {"r": uniform(0, 1), "g": grid_search([1, 2, 3])},
            num_samples=2,
            constant_grid_search=True,
            random_state=0,
        )
    )
    assert len({c["r"] for c in out[:3]}) == 1 and out[0]["r"] != out[3]["r"]


def test_num_samples_minus_one_means_until_stopped():
    gen = make({"x": uniform(0, 1)}, num_samples=-1, random_state=0)
    assert all(isinstance(gen.suggest(str(i)), dict) for i in range(50))


@pytest.mark.parametrize("num_samples", [0, -2, 1.5, "3", True])
def test_invalid_num_samples(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        BasicVariantGenerator().set_search_properties(None, None, {}, num_samples=num_samples)


def test_misuse_errors():
    with pytest.raises(RuntimeError, match="set_search_properties"):
        BasicVariantGenerator().suggest("t")
    with pytest.raises(ValueError, match="max_concurrent"):
        BasicVariantGenerator(max_concurrent=-1)
    with pytest.raises(ValueError, match="mode"):
        BasicVariantGenerator().set_search_properties("m", "up", {})


def test_empty_space_gives_num_samples_empty_configs():
    assert drain(make({}, num_samples=2)) == [{}, {}]


def test_save_and_restore_mid_round_continue_identically(tmp_path):
    space = {"x": uniform(0, 1), "g": grid_search([1, 2, 3])}
    gen = make(space, num_samples=3, random_state=4, points_to_evaluate=[{"x": 0.5}])
    first = [gen.suggest(f"t{i}") for i in range(4)]
    gen.save(str(tmp_path / "state.pkl"))
    fresh = BasicVariantGenerator()
    fresh.restore(str(tmp_path / "state.pkl"))
    rest = drain(fresh)
    assert rest == drain(gen)
    uninterrupted = drain(make(space, 3, random_state=4, points_to_evaluate=[{"x": 0.5}]))
    assert first + rest == uninterrupted and len(uninterrupted) == 9
