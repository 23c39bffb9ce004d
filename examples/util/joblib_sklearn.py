"""scikit-learn's n_jobs on Skate: a grid search whose fits run as Skate tasks.

``register_skate()`` adds a joblib backend; inside ``parallel_backend("skate")``
every ``n_jobs`` loop of scikit-learn (here GridSearchCV's fits) runs on the
cluster. The scores are the same as with joblib's default (loky) backend.

Run: python examples/util/joblib_sklearn.py
"""

import time

import joblib
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

import skate
from skate.util.joblib import register_skate

if __name__ == "__main__":
    skate.init(num_cpus=2)
    register_skate()
    X, y = load_digits(return_X_y=True)
    grid = {"C": [1, 10, 100], "gamma": [0.001, 0.0001]}
    start = time.perf_counter()
    with joblib.parallel_backend("skate"):
        search = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1).fit(X, y)
    print(
        f"{len(search.cv_results_['params']) * 3} fits in {time.perf_counter() - start:.1f} s "
        f"on Skate"
    )
    print("best parameters:", search.best_params_)
    print(f"best cross-validated accuracy: {search.best_score_:.4f}")
    skate.shutdown()
