"""Resolving param spaces into configs (skate/tune/search/variant_generator.py)."""

import copy

import pytest

from skate.tune.search.sample import Domain, choice, grid_search, randint, sample_from, uniform
from skate.tune.search.variant_generator import (
    RecursiveDependencyError,
    apply_preset,
    count_variants,
    flatten_dict,
    format_vars,
    generate_variants,
    has_unresolved_values,
    resolved_vars,
    unflatten_dict,
    unresolved_paths,
)


def configs(space, **kwargs):
    return [config for _, config in generate_variants(space, **kwargs)]


def test_constants_only_yield_one_unchanged_config():
    space = {"a": 1, "b": {"c": [1, 2]}, "f": len}
    assert configs(space) == [space]
    assert [resolved for resolved, _ in generate_variants(space)] == [{}]


def test_grid_product_in_rays_order():
    space = {"b": grid_search(["x", "y"]), "a": grid_search([1, 2, 3]), "c": 0}
    out = configs(space)
    assert len(out) == 6 == count_variants(space)
    # sorted grid paths; the first ("a") varies fastest
    assert [(c["a"], c["b"]) for c in out] == [
        (1, "x"),
        (2, "x"),
        (3, "x"),
        (1, "y"),
        (2, "y"),
        (3, "y"),
    ]
    assert all(c["c"] == 0 for c in out)


def test_each_grid_point_gets_its_own_samples():
    space = {"g": grid_search([1, 2, 3, 4]), "r": uniform(0, 1)}
    out = configs(space, random_state=0)
    assert len({c["r"] for c in out}) == 4


def test_constant_grid_search_shares_samples_across_the_grid():
    space = {"g": grid_search([1, 2, 3]), "r": uniform(0, 1)}
    out = configs(space, constant_grid_search=True, random_state=0)
    assert len({c["r"] for c in out}) == 1 and [c["g"] for c in out] == [1, 2, 3]


def test_constant_grid_search_still_resolves_functions_of_the_grid_per_point():
    space = {"g": grid_search([1, 2]), "double": sample_from(lambda spec: spec.config.g * 2)}
    out = configs(space, constant_grid_search=True)
    assert [c["double"] for c in out] == [2, 4]


def test_nested_dicts_and_lists_at_any_depth():
    space = {
        "model": {"layers": [{"units": randint(1, 5)}, {"units": grid_search([8, 16])}]},
        "opt": {"lr": uniform(0, 1), "name": "sgd", "betas": [0.9, choice([0.99, 0.999])]},
    }
    variants = list(generate_variants(space, random_state=1))
    assert len(variants) == 2
    for resolved, config in variants:
        assert 1 <= config["model"]["layers"][0]["units"] < 5
        assert config["opt"]["betas"][1] in (0.99, 0.999) and config["opt"]["name"] == "sgd"
        assert set(resolved) == {
            ("model", "layers", 0, "units"),
            ("model", "layers", 1, "units"),
            ("opt", "lr"),
            ("opt", "betas", 1),
        }
    assert [c["model"]["layers"][1]["units"] for _, c in variants] == [8, 16]


def test_grid_values_holding_domains_and_grids_are_resolved_recursively():
    space = {
        "opt": grid_search(
            [{"name": "sgd", "lr": uniform(0, 1)}, {"name": grid_search(["a", "b"])}]
        ),
        "seed": grid_search([0, 1]),
    }
    out = configs(space, random_state=0)
    assert len(out) == count_variants(space) == 6
    assert sum(isinstance(c["opt"].get("lr"), float) for c in out) == 2
    assert sorted(c["opt"]["name"] for c in out) == ["a", "a", "b", "b", "sgd", "sgd"]


def test_sample_from_is_resolved_after_what_it_reads():
    # declared in reverse dependency order; both attribute and item access
    space = {
        "c": sample_from(lambda spec: spec.config["b"] + 1),
        "b": sample_from(lambda spec: spec.config.nested.a * 2),
        "nested": {"a": randint(1, 100)},
        "first": sample_from(lambda spec: spec["config"]["items"][0]),
        "items": [grid_search([5, 6])],
    }
    for _, config in generate_variants(space, random_state=3):
        assert config["b"] == 2 * config["nested"]["a"] and config["c"] == config["b"] + 1
        assert config["first"] == config["items"][0]


def test_cycles_raise_naming_the_paths():
    space = {
        "a": sample_from(lambda spec: spec.config.b),
        "b": sample_from(lambda spec: spec.config.a),
        "ok": 1,
    }
    with pytest.raises(RecursiveDependencyError, match="`a`.*`b`.*cycle"):
        configs(space)


def test_missing_key_and_user_errors_are_reported_with_the_path():
    with pytest.raises(ValueError, match="`a`"):
        configs({"a": sample_from(lambda spec: spec.config.missing)})
    with pytest.raises(ValueError, match="`x/y`.*boom"):
        configs({"x": {"y": sample_from(lambda: 1 / 0 if False else _raise("boom"))}})


def _raise(message):
    raise RuntimeError(message)


def test_unknown_types_are_constants_but_unsampleable_domains_raise():
    class Thing:
        pass

    thing = Thing()
    space = {"cls": Thing, "obj": thing, "fn": print, "r": randint(0, 2)}
    (config,) = configs(space, random_state=0)
    assert config["cls"] is Thing and config["fn"] is print and isinstance(config["obj"], Thing)
    with pytest.raises(ValueError, match="`d`.*no sampler"):
        configs({"d": Domain()})
    with pytest.raises(ValueError, match="`g`.*list"):
        configs({"g": {"grid_search": 5}})
    with pytest.raises(ValueError, match="`g`.*no values"):
        configs({"g": {"grid_search": []}})


def test_space_is_not_modified_and_seeds_reproduce():
    space = {"a": uniform(0, 1), "g": grid_search([1, 2]), "n": {"b": randint(0, 100)}}
    before = copy.deepcopy(space)
    first = configs(space, random_state=7)
    assert repr(space) == repr(before)
    assert configs(space, random_state=7) == first
    assert configs(space, random_state=8) != first


def test_paths_resolved_vars_and_unresolved_check():
    space = {"lr": uniform(0, 1), "g": grid_search([1, 2]), "k": 3, "l": [randint(0, 2)]}
    assert unresolved_paths(space) == [("lr",), ("g",), ("l", 0)]
    config = {"lr": 0.5, "g": 2, "k": 3, "l": [1]}
    assert resolved_vars(space, config) == {("lr",): 0.5, ("g",): 2, ("l", 0): 1}
    assert resolved_vars(space, {"k": 3}) == {}
    assert has_unresolved_values(space) and not has_unresolved_values({"k": [1, {"a": 2}]})


def test_format_vars_like_ray():
    resolved = {("opt", "lr"): 0.01, ("b",): "a b/c", ("a",): 1, ("layers", 0): 2.5}
    assert format_vars(resolved) == "a=1,b=a_b_c,0=2.5000,lr=0.0100"
    assert format_vars({}) == ""


def test_flatten_unflatten_round_trip_and_errors():
    nested = {"a": {"b": 1, "c": {"d": [1, {"e": 2}]}}, "f": 3}
    flat = flatten_dict(nested)
    assert flat == {"a/b": 1, "a/c/d": [1, {"e": 2}], "f": 3}
    assert unflatten_dict(flat) == nested
    assert flatten_dict({"a": {"b": 1}}, delimiter=".") == {"a.b": 1}
    with pytest.raises(ValueError, match="delimiter"):
        flatten_dict({"a/b": 1}, prevent_delimiter=True)
    with pytest.raises(TypeError, match="rename"):
        unflatten_dict({"a": 1, "a/b": 2})


def test_apply_preset_overrides_domains_and_grids():
    space = {"a": uniform(0, 1), "g": grid_search([1, 2]), "n": {"x": randint(0, 5), "y": 1}}
    preset = apply_preset(space, {"a": 0.3, "n": {"x": 4}})
    assert preset["a"] == 0.3 and preset["n"] == {"x": 4, "y": 1}
    assert count_variants(preset) == 2 and count_variants(apply_preset(space, {"g": 7})) == 1
    with pytest.raises(ValueError, match="`n/z`.*not in the search space"):
        apply_preset(space, {"n": {"z": 1}})
