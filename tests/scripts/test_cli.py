"""`skate start --head / status / stop` and joining with init(address="auto")."""

import os
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only


def skate_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", *args],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def run_driver(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def head():
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is already running on this machine")
    out = skate_cli("start", "--head", "--num-cpus", "2", "--port", "6391",
                    "--resources", '{"special": 2}', "--dashboard-port", "0").stdout
    info = read_current()
    try:
        yield out, info
    finally:
        skate_cli("stop")
        wait_for_condition(lambda: not any(psutil.pid_exists(p) and
                                           psutil.Process(p).status() != "zombie"
                                           for p in info["pids"]), timeout=10)


def test_start_status_join_and_stop(head):
    out, info = head
    assert "skate.init(address='auto')" in out
    status = skate_cli("status").stdout
    assert "1 alive" in status and "CPU: 0 / 2" in status and "special: 0 / 2" in status
    drv = run_driver("""
        import skate
        skate.init(address="auto", namespace="cli-test")
        @skate.remote(resources={"special": 1})
        def f():
            return 41 + 1
        assert skate.get(f.remote()) == 42
        @skate.remote
        class Keeper:
            def ping(self):
                return "pong"
        Keeper.options(name="keeper", lifetime="detached").remote()
        Keeper.options(name="ephemeral").remote()
        assert skate.get(skate.get_actor("keeper").ping.remote()) == "pong"
        print("first driver done")
    """)
    assert drv.returncode == 0, drv.stderr
    # a driver leaving leaves the cluster running; detached actors outlive it
    drv2 = run_driver("""
        import skate
        skate.init(address="auto", namespace="cli-test")
        assert skate.get(skate.get_actor("keeper").ping.remote()) == "pong"
        try:
            skate.get_actor("ephemeral")
            raise SystemExit("a non-detached actor outlived its driver")
        except ValueError:
            pass
        print("second driver done")
    """)
    assert drv2.returncode == 0, drv2.stderr + drv2.stdout
    assert all(psutil.pid_exists(p) for p in info["pids"])


def test_init_auto_without_a_cluster_is_a_clear_error():
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is running on this machine")
    drv = run_driver("""
        import skate
        try:
            skate.init(address="auto")
        except ConnectionError as e:
            assert "skate start --head" in str(e)
            print("ok")
    """)
    assert drv.stdout.strip() == "ok", drv.stderr


def test_connecting_with_resources_is_refused(head):
    drv = run_driver("""
        import skate
        try:
            skate.init(address="auto", num_cpus=4)
        except ValueError as e:
            print("refused:", e)
    """)
    assert "refused" in drv.stdout, drv.stderr


def test_stop_without_head_and_bad_resources_json():
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is running on this machine")
    assert "No Skate head" in skate_cli("stop").stdout
    bad = skate_cli("start", "--head", "--resources", "{nope", check=False)
    assert bad.returncode == 2 and "JSON" in bad.stderr


def test_head_restart_keeps_detached_actors_and_kv(tmp_path):
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is already running on this machine")
    session = str(tmp_path / "session")
    skate_cli("start", "--head", "--num-cpus", "1", "--port", "6392", "--session-dir", session)
    try:
        first = run_driver("""
            import skate
            from skate.experimental import internal_kv
            skate.init(address="auto", namespace="restart")
            @skate.remote
            class Keeper:
                def __init__(self, tag):
                    self.tag = tag
                def get(self):
                    return self.tag
            k = Keeper.options(name="keeper", lifetime="detached").remote("kept")
            assert skate.get(k.get.remote()) == "kept"
            internal_kv._internal_kv_put("lib-state", b"42")
            print("ok")
        """)
        assert first.stdout.strip() == "ok", first.stderr
        skate_cli("stop")
        skate_cli("start", "--head", "--num-cpus", "1", "--port", "6392", "--session-dir",
                  session)
        second = run_driver("""
            import skate
            from skate.experimental import internal_kv
            skate.init(address="auto", namespace="restart")
            assert internal_kv._internal_kv_get("lib-state") == b"42"
            k = skate.get_actor("keeper")
            assert skate.get(k.get.remote(), timeout=30) == "kept"  # recreated from its record
            print("ok")
        """)
        assert second.stdout.strip() == "ok", second.stderr + second.stdout
    finally:
        skate_cli("stop")


def test_a_second_node_joins_over_grpc(head):
    out, info = head
    joined = skate_cli("start", "--address", "127.0.0.1:6391", "--num-cpus", "1",
                       "--resources", '{"joined": 1}')
    assert "Joined the cluster" in joined.stdout, joined.stderr
    status = skate_cli("status").stdout
    assert "2 alive" in status and "joined: 0 / 1" in status
    drv = run_driver("""
        import numpy as np
        import skate
        skate.init(address="auto")
        @skate.remote(resources={"joined": 1})
        def there(a):
            return skate.get_runtime_context().get_node_id(), float(a.sum())
        node, total = skate.get(there.remote(np.ones(1_000_000)))
        assert total == 1e6
        print("ok", node)
    """)
    assert drv.stdout.startswith("ok"), drv.stderr
    bad = skate_cli("start", "--address", "127.0.0.1:6391", "--token", "wrong", check=False)
    assert bad.returncode != 0


def test_grpc_port_refuses_bad_tokens_and_survives_garbage(head):
    import socket

    from skate.core import rpc

    intruder = rpc.connect("grpc:127.0.0.1:6391", token="wrong", name="intruder")
    try:
        with pytest.raises(rpc.ConnectionClosed):
            intruder.call("get_nodes", timeout=10)
    finally:
        intruder.close()
    for garbage in (os.urandom(200), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(100)):
        s = socket.create_connection(("127.0.0.1", 6391), timeout=5)
        try:
            s.sendall(garbage)
        finally:
            s.close()
    assert "1 alive" in skate_cli("status").stdout  # still serving
