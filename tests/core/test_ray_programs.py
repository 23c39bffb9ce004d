"""Things Ray programs do at their edges: job config, RAY_ADDRESS, names they import,
classes defined in ``__main__``, the threads numpy and torch are allowed.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import os
import textwrap

import pytest

import skate
from tests.core.utils import run_driver


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


def test_names_ray_programs_import():
    import skate.exceptions
    import skate.util.multiprocessing

    assert issubclass(skate.exceptions.AsyncioActorExit, Exception)
    queue = skate.util.multiprocessing.JoinableQueue()
    queue.put(1)
    assert queue.get(timeout=5) == 1
    queue.task_done()
    f = skate.cloudpickle.loads(skate.cloudpickle.dumps(lambda x: x + 1))
    assert f(1) == 2


def test_job_config_code_search_path_reaches_workers(tmp_path):
    # a module only the search path holds: its functions are imported by name in workers
    (tmp_path / "searched_module_x7.py").write_text(textwrap.dedent(f"""
        import {skate.__name__}

        @{skate.__name__}.remote
        def read():
            return "found"
    """))
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from {skate.__name__}.job_config import JobConfig
        skate.init(num_cpus=1, job_config=JobConfig(code_search_path=[{str(tmp_path)!r}]))
        import searched_module_x7
        print("RESULT", skate.get(searched_module_x7.read.remote(), timeout=60))
        skate.shutdown()
    """
    out = run_driver(code)
    assert "RESULT found" in out.stdout, out.stderr[-3000:]


def test_nested_actor_class_in_main_runs():
    code = """
        skate.init(num_cpus=1)

        class Outer:
            @skate.remote
            class Inner:
                LIMIT = 4

                def f(self, x):
                    return x * 2

        @skate.remote
        class Reads:
            Y = 5

            def g(self):
                return Reads.Y

        a = Outer.Inner.remote()
        print("RESULT", skate.get(a.f.remote(21), timeout=60),
              skate.get(Reads.remote().g.remote(), timeout=60))
        skate.shutdown()
    """
    out = run_driver(code)
    assert "RESULT 42 5" in out.stdout, out.stderr[-3000:]


def test_init_and_pool_honour_ray_address(cluster):
    address = skate.get_runtime_context().gcs_address
    for var in ("RAY_ADDRESS",) + (() if skate.__name__ == "ray" else ("SKATE_ADDRESS",)):
        code = f"""
            import os
            os.environ[{var!r}] = {address!r}
            from {skate.__name__}.util.multiprocessing import Pool
            with Pool(1) as pool:
                print("POOL", pool.map(abs, [-1, -2]))
            print("NODES", len(skate.nodes()))
            skate.shutdown()
        """
        out = run_driver(code)
        assert "POOL [1, 2]" in out.stdout, out.stderr[-3000:]
        # it joined the running cluster instead of starting a node of its own
        assert "NODES 1" in out.stdout


@skate.remote
def omp_threads():
    return os.environ.get("OMP_NUM_THREADS")


def test_workers_get_omp_num_threads_from_their_cpus(cluster):
    if "OMP_NUM_THREADS" in os.environ:
        pytest.skip("OMP_NUM_THREADS is set for this test run")
    assert skate.get(omp_threads.remote()) == "1"
    assert skate.get(omp_threads.options(num_cpus=2).remote()) == "2"


def test_omp_num_threads_set_by_the_user_is_kept():
    code = """
        import os
        os.environ["OMP_NUM_THREADS"] = "3"
        skate.init(num_cpus=2)

        @skate.remote(num_cpus=2)
        def omp():
            return os.environ.get("OMP_NUM_THREADS")

        print("RESULT", skate.get(omp.remote(), timeout=60))
        skate.shutdown()
    """
    out = run_driver(code)
    assert "RESULT 3" in out.stdout, out.stderr[-3000:]


def test_pool_larger_than_the_cluster_is_refused(cluster):
    from skate.util.multiprocessing import Pool

    with pytest.raises(ValueError, match="CPUs"):
        Pool(processes=3)


def _wait_for(path):
    from tests.core.utils import wait_for_file

    wait_for_file(path, timeout=60)  # never created: it runs until the pool is terminated
    return path


def test_result_of_a_terminated_pool_raises_a_ray_error(cluster, tmp_path):
    from skate.util.multiprocessing import Pool

    pool = Pool(processes=1)
    result = pool.apply_async(_wait_for, (str(tmp_path / "never"),))
    pool.terminate()
    with pytest.raises(skate.exceptions.RayError):
        result.get(timeout=30)
