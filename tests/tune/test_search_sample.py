"""Search-space domains (skate/tune/search/sample.py): range, type, quantization,
log scale and validation, checked statistically with fixed seeds."""

import math
from collections import Counter

import numpy as np
import pytest

from skate.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)

N = 4000


def draw(domain, seed=0, n=N):
    return domain.sample(size=n, random_state=seed)


def is_multiple(value, q):
    return math.isclose(value / q, round(value / q), abs_tol=1e-9)


def test_uniform_range_type_and_mean():
    values = draw(uniform(2, 5))
    assert all(type(v) is float and 2 <= v < 5 for v in values)
    assert abs(np.mean(values) - 3.5) < 0.05
    # each third of the range gets about a third of the draws
    thirds = Counter(int(v - 2) for v in values)
    assert all(abs(thirds[k] / N - 1 / 3) < 0.03 for k in range(3))


def test_quniform_rounds_to_multiples_with_half_weight_endpoints():
    values = draw(quniform(0, 1, 0.25))
    assert all(type(v) is float and is_multiple(v, 0.25) and 0 <= v <= 1 for v in values)
    counts = Counter(round(v / 0.25) for v in values)
    assert set(counts) == {0, 1, 2, 3, 4}
    # rounding a uniform draw: the end points get half the weight of inner points
    assert abs(counts[0] / N - 0.125) < 0.02 and abs(counts[2] / N - 0.25) < 0.03


def test_loguniform_is_uniform_in_log_space():
    values = draw(loguniform(1e-4, 1))
    assert all(type(v) is float and 1e-4 <= v < 1 for v in values)
    decades = Counter(math.floor(math.log10(v)) for v in values)
    assert set(decades) == {-4, -3, -2, -1}
    assert all(abs(c / N - 0.25) < 0.03 for c in decades.values())


def test_loguniform_base_two():
    values = draw(loguniform(1, 16, base=2))
    assert abs(np.mean(np.log2(values)) - 2) < 0.05


def test_qloguniform():
    values = draw(qloguniform(1, 1000, 1))
    assert all(float(v).is_integer() and 1 <= v <= 1000 for v in values)
    assert abs(np.mean(np.log10(values)) - 1.5) < 0.1


def test_randn_moments_and_qrandn_quantization():
    values = draw(randn(5, 2))
    assert all(type(v) is float for v in values)
    assert abs(np.mean(values) - 5) < 0.1 and abs(np.std(values) - 2) < 0.1
    q_values = draw(qrandn(0, 10, 2))
    assert all(is_multiple(v, 2) for v in q_values)
    assert abs(np.std(q_values) - 10) < 0.5


def test_randint_upper_is_exclusive():
    values = draw(randint(0, 3))
    assert all(type(v) is int for v in values)
    counts = Counter(values)
    assert set(counts) == {0, 1, 2}
    assert all(abs(c / N - 1 / 3) < 0.03 for c in counts.values())


def test_qrandint_upper_is_inclusive_and_quantized():
    values = draw(qrandint(0, 10, 5))
    assert all(type(v) is int for v in values)
    assert set(values) == {0, 5, 10}
    assert set(draw(qrandint(1, 3))) == {1, 2, 3}


def test_lograndint_log_scale_and_bounds():
    values = draw(lograndint(1, 1000))
    assert all(type(v) is int and 1 <= v < 1000 for v in values)
    # a third of log-space lies below 10
    assert abs(sum(v < 10 for v in values) / N - 1 / 3) < 0.03


def test_qlograndint_multiples_in_inclusive_range():
    values = draw(qlograndint(10, 1000, 10))
    assert all(type(v) is int and v % 10 == 0 and 10 <= v <= 1000 for v in values)
    assert max(values) > 500 and min(values) == 10


def test_choice_uniform_over_categories_keeps_objects():
    marker = {"obj": 1}
    values = draw(choice(["a", None, marker]), n=3000)
    counts = Counter(id(v) if isinstance(v, dict) else v for v in values)
    assert len(counts) == 3
    assert all(abs(c / 3000 - 1 / 3) < 0.04 for c in counts.values())
    assert any(v is marker for v in values)


def test_sample_from_with_and_without_spec():
    assert sample_from(lambda: 7).sample() == 7
    assert sample_from(lambda spec: spec["k"] + 1).sample(config={"k": 1}) == 2
    assert sample_from(lambda spec: 3).sample(size=2) == [3, 3]
    with pytest.raises(ValueError, match="0 arguments or 1"):
        sample_from(lambda a, b: 0)
    with pytest.raises(TypeError):
        sample_from(5)


def test_grid_search_is_rays_dict():
    assert grid_search([1, 2]) == {"grid_search": [1, 2]}
    assert grid_search(range(2)) == {"grid_search": [0, 1]}
    with pytest.raises(ValueError, match="at least one"):
        grid_search([])
    with pytest.raises(TypeError):
        grid_search(3)


def test_size_one_is_a_value_larger_sizes_are_lists():
    assert isinstance(uniform(0, 1).sample(random_state=0), float)
    assert len(uniform(0, 1).sample(size=3, random_state=0)) == 3
    with pytest.raises(ValueError, match="size"):
        uniform(0, 1).sample(size=0)


@pytest.mark.parametrize(
    "make_state",
    [lambda: 3, lambda: np.random.default_rng(3), lambda: np.random.RandomState(3)],
)
def test_random_state_forms_are_reproducible(make_state):
    a = randint(0, 1000).sample(size=5, random_state=make_state())
    b = randint(0, 1000).sample(size=5, random_state=make_state())
    assert a == b


def test_none_uses_numpys_global_generator():
    np.random.seed(11)
    a = uniform(0, 1).sample(size=3)
    np.random.seed(11)
    assert uniform(0, 1).sample(size=3) == a
    with pytest.raises(TypeError, match="random_state"):
        uniform(0, 1).sample(random_state="seed")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: loguniform(0, 1), "above 0"),
        (lambda: loguniform(-1, 1), "above 0"),
        (lambda: loguniform(1, 10, base=1), "base"),
        (lambda: uniform(1, 1), "below"),
        (lambda: uniform(2, 1), "below"),
        (lambda: randint(3, 3), "below"),
        (lambda: randint(0, 1.5), "whole number"),
        (lambda: lograndint(0, 10), "above 0"),
        (lambda: choice([]), "at least one"),
        (lambda: quniform(0.1, 1, 0.25), "multiple of q"),
        (lambda: quniform(0, 1, 0), "positive"),
        (lambda: qrandint(0, 10, 0), ">= 1"),
        (lambda: randn(0, 0), "standard deviation"),
        (lambda: uniform(1, 10).loguniform(), "one sampler"),
        (lambda: Float(0, 1).normal(), "unbounded"),
        (lambda: Float(None, 1).uniform(), "finite"),
    ],
)
def test_invalid_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_type_errors_for_non_numbers():
    with pytest.raises(TypeError):
        uniform("a", 1)
    with pytest.raises(TypeError):
        choice("abc")


def test_domains_that_cannot_be_sampled_say_why():
    with pytest.raises(ValueError, match="no sampler"):
        Domain().sample()
    with pytest.raises(ValueError, match="unbounded"):
        Float(None, None).sample()
    with pytest.raises(RuntimeError, match="grid"):
        Categorical([1, 2]).grid().sample()


def test_grid_flag_validity_and_defaults():
    assert Categorical([1, 2]).grid().is_grid() and not choice([1, 2]).is_grid()
    assert Function(lambda: 1).is_function()
    assert uniform(0, 1).is_valid(0.5) and not uniform(0, 1).is_valid(2)
    assert randint(0, 3).is_valid(2) and not choice([1]).is_valid(2)
    # a domain without an explicit sampler uses its default (uniform)
    assert 0 <= Float(0, 1).sample(random_state=0) <= 1
    assert Integer(0, 2).sample(random_state=0) in (0, 1)
    assert "Float" in repr(uniform(0, 1)) and "Uniform" in repr(uniform(0, 1))
