"""The actor class as Ray users use it: its attributes, misuse errors, dir(), options checks.

Differential: every test here passes against real Ray too
(SKATE_TEST_AGAINST_RAY=1).
"""

import pytest

import skate


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


class Base:
    INHERITED = "from-base"

    @staticmethod
    def base_static():
        return "base-static"


@skate.remote
class WithClassAttributes(Base):
    LIMIT = 3

    @classmethod
    def make_label(cls, n):
        return f"{cls.__name__}-{n}"

    @staticmethod
    def double(x):
        return 2 * x

    def read(self):
        # the class's own name inside a method: Ray's decorated class subclasses the user's
        return (WithClassAttributes.LIMIT, WithClassAttributes.INHERITED,
                WithClassAttributes.double(4), WithClassAttributes.base_static(),
                WithClassAttributes.make_label(1).endswith("-1"))


def test_class_attributes_through_the_actor_class(cluster):
    a = WithClassAttributes.remote()
    assert skate.get(a.read.remote()) == (3, "from-base", 8, "base-static", True)
    # and from the driver
    assert WithClassAttributes.LIMIT == 3
    assert WithClassAttributes.double(5) == 10
    assert WithClassAttributes.INHERITED == "from-base"


def test_dir_lists_the_methods(cluster):
    assert "read" in dir(WithClassAttributes)
    assert "double" in dir(WithClassAttributes)
    a = WithClassAttributes.remote()
    assert "read" in dir(a)


@pytest.mark.parametrize("kind", ["function", "class"])
def test_remote_with_empty_parentheses_is_an_error(kind):
    with pytest.raises((TypeError, AssertionError), match="must be applied"):
        deco = skate.remote()
        if kind == "function":
            @deco
            def f():
                return 1
        else:
            @deco
            class A:
                pass


@pytest.mark.parametrize("options", [{"invalid_kwarg": 0}, {"num_cpus": 0, "invalid_kwarg": 0}])
@pytest.mark.parametrize("kind", ["function", "class"])
def test_unknown_option_is_an_error_at_definition(kind, options):
    with pytest.raises(ValueError, match="invalid_kwarg"):
        if kind == "function":
            @skate.remote(**options)
            def f():
                return 1
        else:
            @skate.remote(**options)
            class A:
                pass


def test_actor_class_cannot_be_instantiated_directly():
    with pytest.raises(TypeError, match="cannot be instantiated directly"):
        WithClassAttributes()


def test_actor_class_cannot_be_subclassed():
    with pytest.raises(TypeError, match="Inheriting from actor classes is not currently supported"):
        class Derived(WithClassAttributes):
            pass


@pytest.mark.parametrize("options, error", [
    ({"name": 1, "get_if_exists": True}, TypeError),
    ({"name": "x", "namespace": 2, "get_if_exists": True}, TypeError),
    ({"get_if_exists": True}, ValueError),
])
def test_get_if_exists_arguments_are_checked(cluster, options, error):
    with pytest.raises(error):
        WithClassAttributes.options(**options).remote()
