"""skate.util.joblib: joblib's Parallel (and scikit-learn's n_jobs) as Skate tasks."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

joblib = pytest.importorskip("joblib")
sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

import skate
from skate.util.joblib import SkateBackend, register_ray, register_skate
from tests.core.utils import wait_for_condition, wait_for_file

pytestmark = pytest.mark.skate_only


DIGITS_GRID = {"C": [1, 10], "gamma": [0.001, 0.0001]}


def iris_model():
    return DecisionTreeClassifier(random_state=0)


# The same scikit-learn calls under loky, in a process of their own: loky keeps its
# workers and resource tracker alive after a call, which this suite counts as leaks.
LOKY_REFERENCE = """
import json
import joblib
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.svm import SVC
from tests.util.test_joblib import DIGITS_GRID, fail_on, iris_model

X, y = load_iris(return_X_y=True)
with joblib.parallel_backend("loky"):
    scores = cross_val_score(iris_model(), X, y, cv=5, n_jobs=2)
X, y = load_digits(return_X_y=True)
with joblib.parallel_backend("loky"):
    grid = GridSearchCV(SVC(), DIGITS_GRID, cv=3, n_jobs=2).fit(X[:600], y[:600])
try:
    with joblib.parallel_backend("loky", n_jobs=2):
        joblib.Parallel()(joblib.delayed(fail_on)(i, 7) for i in range(20))
except Exception as e:
    error = [type(e).__name__, str(e)]
print(json.dumps({"cv": scores.tolist(), "best": grid.best_params_, "error": error,
                  "grid": grid.cv_results_["mean_test_score"].tolist()}))
"""


@pytest.fixture(scope="module")
def loky():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOKY_REFERENCE)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def registered():
    register_skate()


def where(_):
    return os.getpid()


def fail_on(x, bad):
    if x == bad:
        raise KeyError(f"no {x}")
    return x


def assigned_cpus(_):
    return skate.get_runtime_context().get_assigned_resources().get("CPU")


def test_parallel_runs_in_skate_workers(skate_cluster):
    with joblib.parallel_backend("skate", n_jobs=2):
        pids = joblib.Parallel()(joblib.delayed(where)(i) for i in range(8))
    assert os.getpid() not in pids


def test_results_match_the_sequential_run(skate_cluster):
    with joblib.parallel_backend("skate", n_jobs=2):
        ours = joblib.Parallel()(joblib.delayed(pow)(i, 3) for i in range(200))
    assert ours == [i**3 for i in range(200)]


def test_cross_val_score_identical_to_loky(skate_cluster, loky):
    X, y = load_iris(return_X_y=True)
    with joblib.parallel_backend("skate"):
        ours = cross_val_score(iris_model(), X, y, cv=5, n_jobs=-1)
    assert ours.tolist() == loky["cv"]


def test_grid_search_identical_to_loky(skate_cluster, loky):
    X, y = load_digits(return_X_y=True)
    with joblib.parallel_backend("skate"):
        ours = GridSearchCV(SVC(), DIGITS_GRID, cv=3, n_jobs=-1).fit(X[:600], y[:600])
    assert ours.best_params_ == loky["best"]
    assert ours.cv_results_["mean_test_score"].tolist() == loky["grid"]


def test_exception_type_matches_loky(skate_cluster, loky):
    with joblib.parallel_backend("skate", n_jobs=2), pytest.raises(KeyError) as info:
        joblib.Parallel()(joblib.delayed(fail_on)(i, 7) for i in range(20))
    assert type(info.value) is KeyError
    assert [type(info.value).__name__, str(info.value)] == loky["error"]


def test_failure_cancels_the_running_batches(skate_cluster, tmp_path):
    never = str(tmp_path / "never")
    with joblib.parallel_backend("skate", n_jobs=2), pytest.raises(KeyError):
        joblib.Parallel(batch_size=1)(
            [joblib.delayed(wait_for_file)(never, 60), joblib.delayed(fail_on)(1, 1)]
        )
    # the blocked batch was cancelled, so its CPU comes back well before its 60 s timeout
    wait_for_condition(lambda: skate.available_resources().get("CPU") == 2, timeout=20)


def test_n_jobs(skate_cluster):
    backend = SkateBackend()
    assert backend.effective_n_jobs(-1) == 2
    assert backend.effective_n_jobs(-2) == 1
    assert backend.effective_n_jobs(5) == 5
    with pytest.raises(ValueError):
        backend.effective_n_jobs(0)
    with joblib.parallel_backend("skate", n_jobs=1):  # one job runs in-process, as with loky
        assert joblib.Parallel()(joblib.delayed(where)(0) for _ in range(2)) == [os.getpid()] * 2


def test_ray_remote_args(skate_cluster):
    with joblib.parallel_backend("skate", n_jobs=2, ray_remote_args={"num_cpus": 2}):
        assert joblib.Parallel()(joblib.delayed(assigned_cpus)(i) for i in range(2)) == [2, 2]


def test_register_ray_for_ray_programs(skate_cluster):
    register_ray()
    with joblib.parallel_backend("ray", n_jobs=2):
        assert joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]


def test_starts_skate_when_needed(shutdown_only):
    with joblib.parallel_backend("skate", n_jobs=2):
        assert joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
    assert skate.is_initialized()
