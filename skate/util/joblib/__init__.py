"""joblib on Skate: scikit-learn's ``n_jobs`` work as Skate tasks.

>>> import joblib
>>> from skate.util.joblib import register_skate
>>> register_skate()
>>> with joblib.parallel_backend("skate"):
...     joblib.Parallel(n_jobs=2)(joblib.delayed(pow)(i, 2) for i in range(4))
[0, 1, 4, 9]

Needs ``joblib`` (``pip install "skate[util]"``).
"""

__all__ = ["SkateBackend", "register_ray", "register_skate"]


def _register(name: str) -> None:
    try:
        from joblib.parallel import register_parallel_backend
    except ImportError as e:
        raise ImportError(
            "The skate joblib backend needs joblib: pip install joblib "
            "(or pip install 'skate[util]')."
        ) from e
    from skate.util.joblib.backend import SkateBackend

    register_parallel_backend(name, SkateBackend)


def register_skate() -> None:
    """Register the backend as ``"skate"``: ``with joblib.parallel_backend("skate"): ...``."""
    _register("skate")


def register_ray() -> None:
    """Register the same backend as ``"ray"``, so Ray programs run unchanged.

    >>> import joblib, skate as ray
    >>> ray.util.joblib.register_ray()
    >>> with joblib.parallel_backend("ray", n_jobs=2):
    ...     joblib.Parallel()(joblib.delayed(abs)(-1) for _ in range(2))
    [1, 1]
    """
    _register("ray")


def __getattr__(name):
    if name == "SkateBackend":
        from skate.util.joblib.backend import SkateBackend

        return SkateBackend
    raise AttributeError(f"module 'skate.util.joblib' has no attribute {name!r}")
