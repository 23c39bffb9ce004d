"""`skate list / get / summary` against a head started with `skate start --head`."""

import json

import pytest

from tests.core.utils import wait_for_condition
from tests.scripts.test_cli import head, run_driver, skate_cli  # noqa: F401 - the fixture

pytestmark = pytest.mark.skate_only


def test_list_get_and_summary(head):  # noqa: F811 - the fixture
    drv = run_driver("""
        import skate
        skate.init(address="auto", namespace="state-cli")
        @skate.remote
        class Keeper:
            def ping(self):
                return "pong"
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert skate.get(k.ping.remote()) == "pong"
        @skate.remote
        def square(x):
            return x * x
        assert skate.get([square.remote(i) for i in range(3)]) == [0, 1, 4]
        print(k._actor_id_bytes.hex())
    """)
    assert drv.returncode == 0, drv.stderr
    actor_id = drv.stdout.split()[-1]

    table = skate_cli("list", "actors", "--filter", "state=ALIVE").stdout
    assert table.splitlines()[0].split()[:3] == ["ACTOR_ID", "CLASS_NAME", "STATE"]
    assert actor_id in table and "keeper" in table
    rows = json.loads(skate_cli("list", "actors", "--format", "json", "--detail").stdout)
    (keeper,) = [r for r in rows if r["actor_id"] == actor_id]
    assert keeper["is_detached"] and keeper["ray_namespace"] == "state-cli"
    got = json.loads(skate_cli("get", "actors", actor_id, "--format", "json").stdout)
    assert got == keeper
    nodes = json.loads(skate_cli("list", "nodes", "--format", "json").stdout)
    assert [n["state"] for n in nodes] == ["ALIVE"] and nodes[0]["resources_total"]["CPU"] == 2
    jobs = json.loads(skate_cli("list", "jobs", "--format", "json").stdout)
    assert [j["status"] for j in jobs if j["ray_namespace"] == "state-cli"] == ["FINISHED"]
    summary = skate_cli("summary", "actors").stdout
    assert "Keeper" in summary and "total actors: 1" in summary
    assert "(none)" in skate_cli("list", "placement-groups").stdout
    # the driver sent its task events as it left

    def squares_finished():
        tasks = json.loads(skate_cli("list", "tasks", "--filter", "name=square", "--format",
                                     "json").stdout)
        return len(tasks) == 3 and {t["state"] for t in tasks} == {"FINISHED"}

    wait_for_condition(squares_finished, timeout=20)
    assert "square" in skate_cli("list", "tasks").stdout
    assert "square" in skate_cli("summary", "tasks").stdout


def test_timeline_file(head, tmp_path):  # noqa: F811 - the fixture
    drv = run_driver("""
        import skate
        skate.init(address="auto")
        @skate.remote
        def work():
            return 1
        skate.get([work.remote() for _ in range(4)])
    """)
    assert drv.returncode == 0, drv.stderr
    out = tmp_path / "trace.json"

    def four_slices():  # the owner's and the workers' batches are on their way
        printed = skate_cli("timeline", "--output", str(out)).stdout
        assert str(out) in printed and "perfetto" in printed
        return [e["name"] for e in json.loads(out.read_text())].count("work") == 4

    wait_for_condition(four_slices, timeout=20)
    slices = [e for e in json.loads(out.read_text()) if e["name"] == "work"]
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in slices)
    bad = skate_cli("timeline", "--output", str(tmp_path / "no" / "such" / "dir.json"),
                    check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_user_mistakes_are_one_line_errors(head):  # noqa: F811 - the fixture
    bad = skate_cli("list", "actors", "--filter", "no-operator", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr
    unknown = skate_cli("list", "actors", "--filter", "colour=red", check=False)
    assert unknown.returncode == 2 and "no field 'colour'" in unknown.stderr
    missing = skate_cli("get", "actors", "ab" * 16, check=False)
    assert missing.returncode == 1 and "No actor with id" in missing.stderr


def test_without_a_cluster_it_says_so():
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is running on this machine")
    out = skate_cli("list", "actors", check=False)
    assert out.returncode == 1 and "No Skate cluster is running" in out.stderr
    assert "Traceback" not in out.stderr
