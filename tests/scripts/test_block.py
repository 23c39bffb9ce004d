"""`skate start --block` (systemd, containers): the head and a joining node stay in the
foreground, take the token they are given, stop on SIGTERM, and exit 1 if the node dies."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap

import psutil
import pytest

from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only
TOKEN = "given-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def temp_dir():
    d = tempfile.mkdtemp(prefix="/tmp/skb")  # short: Unix socket paths are limited
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _cli(temp_dir, *args, token=None):
    env = dict(os.environ, SKATE_TEMP_DIR=temp_dir)
    env.pop("SKATE_TOKEN", None)
    if token:
        env["SKATE_TOKEN"] = token
    return subprocess.Popen([sys.executable, "-m", "skate.scripts.skate_cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _gone(proc: subprocess.Popen, pids) -> bool:
    return proc.poll() is not None and not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        for p in pids)


def test_head_and_node_block_take_the_token_and_stop_on_sigterm(temp_dir):
    port = _free_port()
    head = _cli(temp_dir, "start", "--head", "--block", "--port", str(port), "--num-cpus", "1",
                "--dashboard-port", "0", "--token", TOKEN)
    node = None
    try:
        current = os.path.join(temp_dir, "current.json")
        wait_for_condition(lambda: os.path.exists(current), timeout=30)
        import json

        with open(current) as f:
            info = json.load(f)
        with open(os.path.join(info["session_dir"], "token")) as f:
            assert f.read() == TOKEN
        node = _cli(temp_dir, "start", "--block", "--address", f"127.0.0.1:{port}",
                    "--num-cpus", "1", "--resources", '{"joined": 1}', token=TOKEN)
        drv = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import time, skate
            skate.init(address="127.0.0.1:{port}")
            deadline = time.monotonic() + 30
            while skate.cluster_resources().get("joined") != 1:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            @skate.remote(resources={{"joined": 1}})
            def there():
                return "ran on the joined node"
            print(skate.get(there.remote()))
        """)], capture_output=True, text=True, timeout=90,
            env=dict(os.environ, SKATE_TEMP_DIR=temp_dir, SKATE_TOKEN=TOKEN))
        assert drv.returncode == 0 and "ran on the joined node" in drv.stdout, drv.stderr

        node_pids = [c.pid for c in psutil.Process(node.pid).children(recursive=True)]
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
        wait_for_condition(lambda: _gone(node, node_pids), timeout=15)
        assert os.listdir(os.path.join(temp_dir, "nodes")) == []
        head.send_signal(signal.SIGTERM)
        assert head.wait(30) == 0
        wait_for_condition(lambda: _gone(head, info["pids"]), timeout=15)
        assert not os.path.exists(current)
    finally:
        for p in (node, head):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "stop"],
                       env=dict(os.environ, SKATE_TEMP_DIR=temp_dir), capture_output=True)


def test_a_blocking_head_whose_process_dies_stops_the_rest_and_exits_1(temp_dir):
    head = _cli(temp_dir, "start", "--head", "--block", "--port", str(_free_port()),
                "--num-cpus", "1", "--include-dashboard", "false")
    try:
        current = os.path.join(temp_dir, "current.json")
        wait_for_condition(lambda: os.path.exists(current), timeout=30)
        import json

        with open(current) as f:
            pids = json.load(f)["pids"]
        os.kill(pids[1], signal.SIGKILL)  # the node manager
        assert head.wait(30) == 1
        assert "a process of this node exited" in head.stderr.read()
        wait_for_condition(lambda: _gone(head, pids), timeout=15)
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
        subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "stop"],
                       env=dict(os.environ, SKATE_TEMP_DIR=temp_dir), capture_output=True)


def test_a_malformed_token_is_one_line(temp_dir):
    out = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "start", "--head",
                          "--token", "has spaces", "--include-dashboard", "false"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, SKATE_TEMP_DIR=temp_dir))
    assert out.returncode == 2 and "cluster token" in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert os.listdir(temp_dir) == []  # nothing was made
