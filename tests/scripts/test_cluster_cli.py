"""`skate status / memory / logs` and `skate list workers|objects` against a head started
with `skate start --head`."""

import json

import pytest

from tests.core.utils import wait_for_condition
from tests.scripts.test_cli import head, run_driver, skate_cli  # noqa: F401 - the fixture

pytestmark = pytest.mark.skate_only


def test_status_memory_logs_of_a_detached_actor(head):  # noqa: F811 - the fixture
    drv = run_driver("""
        import sys
        import skate
        skate.init(address="auto", namespace="cluster-cli")
        @skate.remote
        class Keeper:
            def __init__(self):
                self.kept = skate.put(b"k" * 5_000_000)  # owned by the actor
            def say(self, word):
                print("keeper says", word, flush=True)
                return word
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert skate.get(k.say.remote("hello")) == "hello"
        # no node has special: 3 (the head has 2): infeasible, shown by status
        Keeper.options(name="waiting", lifetime="detached", resources={"special": 3}).remote()
        sys.stdout.write(f"ACTOR {k._actor_id_bytes.hex()}\\n")  # one write, see below
    """)
    assert drv.returncode == 0, drv.stderr
    # the actor's output reaches this driver too, maybe after the id; print() writes the
    # text and its newline separately, so a forwarded line could split a print
    (actor_id,) = [ln.split()[1] for ln in drv.stdout.splitlines() if ln.startswith("ACTOR ")]

    def infeasible_shown():
        out = skate_cli("status").stdout
        return "{special: 3}: 1 infeasible request(s)" in out

    wait_for_condition(infeasible_shown, timeout=20)
    assert f"Dashboard: {head[1]['dashboard_url']}" in skate_cli("status").stdout
    status = json.loads(skate_cli("status", "--format", "json").stdout)
    assert status["nodes"][0]["resources_total"]["special"] == 2

    wait_for_condition(lambda: skate_cli("logs", "--actor-id", actor_id).stdout
                       == "keeper says hello\n", timeout=20)
    listing = skate_cli("logs").stdout
    assert "worker_out:" in listing and "gcs:" in listing

    memory = skate_cli("memory", "--units", "MB", "--sort-by", "size").stdout
    (line,) = [ln for ln in memory.splitlines() if "skate.put()" in ln]
    assert "4.77 MB" in line and "LOCAL_REFERENCE" in line and "IN_MEMORY" in line
    assert "--- Object stores (all nodes) ---" in memory
    by_site = skate_cli("memory", "--group-by", "call-site", "--stats-only").stdout
    assert "skate.put()" not in by_site and "in memory:" in by_site

    objects = json.loads(skate_cli("list", "objects", "--format", "json", "--filter",
                                   "call_site=skate.put()").stdout)
    (obj,) = objects
    got = json.loads(skate_cli("get", "objects", obj["object_id"], "--format", "json").stdout)
    assert got["object_size"] == obj["object_size"] and got["type"] == "WORKER"
    assert "skate.put()" in skate_cli("summary", "objects").stdout
    workers = json.loads(skate_cli("list", "workers", "--format", "json").stdout)
    assert "Keeper" in {w["actor_class_name"] for w in workers}
    text = skate_cli("metrics").stdout
    assert "# TYPE skate_node_resources gauge" in text and 'skate_actors{State="ALIVE"}' in text
    families = json.loads(skate_cli("metrics", "--format", "json").stdout)
    assert "skate_nodes" in {f["name"] for f in families}

    cleanup = run_driver("""
        import skate
        skate.init(address="auto", namespace="cluster-cli")
        skate.kill(skate.get_actor("keeper"))
        skate.kill(skate.get_actor("waiting"))
    """)
    assert cleanup.returncode == 0, cleanup.stderr
    wait_for_condition(lambda: "(no resource demand)" in skate_cli("status").stdout, timeout=20)


def test_log_mistakes_are_one_line_errors(head):  # noqa: F811 - the fixture
    for args, code, text in [
        (("logs", "--tail", "0", "gcs.log"), 2, "tail"),
        (("logs", "no-such.log"), 1, "no log file"),
        (("logs", "--actor-id", "ab" * 16), 2, "No actor"),
        (("logs", "gcs.log", "--pid", "1"), 2, "not both"),
        (("logs", "gcs.log", "--node-id", "ffff"), 2, "No alive node"),
    ]:
        out = skate_cli(*args, check=False)
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert text in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
