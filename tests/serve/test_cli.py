"""The ``serve`` command (skate/scripts/serve_cli.py), run as a user runs it: real
processes, real ports, a real head from ``skate start --head``."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import httpx
import psutil
import pytest
import yaml

from tests.core.utils import REPO_ROOT, wait_for_condition
from tests.serve.conftest import free_port

pytestmark = pytest.mark.skate_only

DEADLINE = 30  # seconds; the test machine is small and shared
EXAMPLE = os.path.join(REPO_ROOT, "examples", "serve", "config.yaml")


def clean_env(**extra) -> dict:
    """This environment without a cluster address (a private cluster unless told)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SKATE_ADDRESS", "RAY_ADDRESS")}
    return {**env, **extra}


def serve_cli(*args, cwd=REPO_ROOT, env=None, input=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "skate.scripts.serve_cli", *args], cwd=cwd,
                          env=env or clean_env(), input=input, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(proc, code, *words):
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("serve: error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def answers(url, text):
    return httpx.get(url, timeout=5).text == text


def gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def kill_all(pids) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


def config_on(tmp_path, port, **changes):
    cfg = yaml.safe_load(open(EXAMPLE))
    cfg["http_options"]["port"] = port
    cfg.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# -- user mistakes: one line, exit 2, nothing started ---------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "syntax.yaml").write_text("applications:\n  - name: a: b\n")
    (tmp_path / "unknown.yaml").write_text(textwrap.dedent("""
        applications:
          - name: a
            import_path: examples.serve.config_app:app
            route_prefx: /typo
    """))
    (tmp_path / "badopt.yaml").write_text(textwrap.dedent("""
        applications:
          - import_path: examples.serve.config_app:app
            deployments: [{name: Greeter, num_replicas: -1}]
    """))
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "builders.py").write_text(textwrap.dedent("""
        def returns_int(args):
            return 42
        not_an_app = 3
    """))
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    return tmp_path


@pytest.mark.parametrize("args, words", [
    (["run", "no_such_module:app"], ["no module named 'no_such_module'"]),
    (["run", "examples.serve.config_app:nope"], ["has no attribute 'nope'"]),
    (["run", "justaname"], ["module:attribute"]),
    (["run", "builders:returns_int"], ["returned int"]),
    (["run", "builders:not_an_app"], ["of type int"]),
    (["run", "examples.serve.config_app:app", "k=v"], ["not a builder"]),
    (["run", "examples.serve.config_app:app", "--port", "http"], ["--port"]),
    (["run", "examples.serve.config_app:app", "--route-prefix", "x/"], ["--route-prefix"]),
    (["run", "examples.serve.config_app:app", "--bogus"], ["--bogus"]),
    (["run", "{dir}/syntax.yaml"], ["not valid YAML at line 2"]),
    (["run", "{dir}/unknown.yaml"], ["route_prefx"]),
    (["deploy", "{dir}/unknown.yaml"], ["route_prefx"]),
    (["deploy", "{dir}/syntax.yaml"], ["not valid YAML"]),
    (["deploy", "{dir}/badopt.yaml"], ["num_replicas"]),
    (["deploy", "{dir}/empty.yaml"], ["empty"]),
    (["deploy", "{dir}/missing.yaml"], ["no such config file"]),
    (["run", "{dir}/missing.yaml"], ["no such config file"]),
    (["run", "{dir}/unknown.yaml", "--name", "x"], ["config file"]),
    (["nosuchcommand"], ["invalid choice"]),
])
def test_user_mistakes_are_one_line_and_exit_2(bad_files, args, words):
    args = [a.replace("{dir}", str(bad_files)) for a in args]
    cwd = bad_files if any(a.startswith("builders:") for a in args) else REPO_ROOT
    assert_one_line_error(serve_cli(*args, cwd=cwd), 2, *words)


def test_runtime_failures_are_one_line_and_exit_1(bad_files):
    empty = tempfile.mkdtemp(prefix="skt-")
    try:
        env = clean_env(SKATE_TEMP_DIR=empty)  # no head recorded here
        for command in (["deploy", EXAMPLE], ["status"], ["shutdown", "-y"]):
            assert_one_line_error(serve_cli(*command, env=env), 1, "skate start --head")
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    assert_one_line_error(serve_cli("run", "broken:app", cwd=bad_files), 1, "boom at import")
    refused = serve_cli("shutdown", input="n\n")  # asks first; "n" connects to nothing
    assert refused.returncode == 1 and "Aborted" in refused.stderr


def test_help_and_no_command():
    assert serve_cli("--help").returncode == 0
    assert "deploy" in serve_cli("run", "--help").stdout + serve_cli("--help").stdout
    assert serve_cli().returncode == 2


# -- serve run: foreground, stopped by a signal -------------------------------------------------
@pytest.fixture
def foreground(tmp_path):
    """Start ``serve run ...`` (Popen); yields a helper, and kills what is left on failure."""
    started, seen, files = [], set(), []

    def start(*args):
        files[:] = [open(tmp_path / "out.txt", "w"), open(tmp_path / "err.txt", "w")]
        proc = subprocess.Popen([sys.executable, "-m", "skate.scripts.serve_cli", "run", *args],
                                cwd=REPO_ROOT, env=clean_env(), stdout=files[0],
                                stderr=files[1])
        started.append(proc)
        return proc

    def stdout():
        return (tmp_path / "out.txt").read_text()

    def descendants(proc):
        pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        seen.update(pids)
        return pids

    try:
        yield start, stdout, descendants
    finally:
        for proc in started:
            if proc.poll() is None:
                try:
                    descendants(proc)
                except psutil.Error:
                    pass
                proc.kill()
                proc.wait()
        kill_all(seen)  # what a failed test left: the private cluster's processes
        for f in files:
            f.close()


def stop_and_check(proc, pids, sig, stdout, stderr_path):
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve run did not stop within {DEADLINE} s of {sig!r}")
    assert code == 0, stdout() + stderr_path.read_text()
    assert "Traceback" not in stderr_path.read_text()
    assert stdout().rstrip().endswith("Stopped.")
    wait_for_condition(lambda: gone(pids), timeout=DEADLINE)


def test_run_import_path_serves_until_sigint(foreground, tmp_path):
    start, stdout, descendants = foreground
    port = free_port()
    proc = start("examples.serve.config_app:build", "greeting=howdy", "--port", str(port),
                 "--route-prefix", "/hi", "--name", "greeter")
    url = f"http://127.0.0.1:{port}/hi"
    wait_for_condition(lambda: f"at {url} " in stdout(), timeout=DEADLINE)
    assert stdout().splitlines()[0] == \
        f"Serving application 'greeter' at {url} (Ctrl-C to stop)."
    assert answers(f"{url}?name=cli", "howdy cli")
    pids = descendants(proc)
    assert pids  # its private cluster: control store, node manager, workers
    stop_and_check(proc, pids, signal.SIGINT, stdout, tmp_path / "err.txt")
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)


def test_run_config_file_serves_every_app_until_sigterm(foreground, tmp_path):
    start, stdout, descendants = foreground
    port = free_port()
    proc = start(config_on(tmp_path, port))
    base = f"http://127.0.0.1:{port}"
    wait_for_condition(lambda: stdout().count("Serving application") == 2, timeout=DEADLINE)
    assert answers(f"{base}/?name=a", "hello a")  # user_config from the file
    assert answers(f"{base}/shout?name=b", "HEY b")  # a builder given the file's args
    stop_and_check(proc, descendants(proc), signal.SIGTERM, stdout, tmp_path / "err.txt")


# -- serve deploy / status / shutdown against `skate start --head` -------------------------------
@pytest.fixture(scope="module")
def head():
    """A head in its own temporary session folder (so another head on this machine is not
    touched), started in a folder that cannot import the example: its replicas get the
    app's module from the deploying command."""
    session_root = tempfile.mkdtemp(prefix="skt-")  # short: unix socket paths are limited
    env = clean_env(SKATE_TEMP_DIR=session_root)
    started = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "start",
                              "--head", "--num-cpus", "2", "--port", str(free_port())],
                             cwd=session_root, env=env, capture_output=True, text=True,
                             timeout=120)
    pids = []
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        import json

        with open(os.path.join(session_root, "current.json")) as f:
            pids = json.load(f)["pids"]
        yield env
    finally:
        try:
            serve_cli("shutdown", "-y", env=env)
        finally:
            subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "stop"], env=env,
                           capture_output=True, timeout=120)
            try:
                wait_for_condition(lambda: gone(pids), timeout=DEADLINE)
            finally:
                kill_all(pids)
                shutil.rmtree(session_root, ignore_errors=True)


def app_statuses(env) -> dict:
    proc = serve_cli("status", env=env)
    assert proc.returncode == 0, proc.stderr
    return {name: app["status"] for name, app in yaml.safe_load(proc.stdout)["applications"]
            .items()}


def test_deploy_status_and_shutdown(head, tmp_path):
    port = free_port()
    deployed = serve_cli("deploy", config_on(tmp_path, port), env=head)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert deployed.stdout.splitlines() == [
        f"Deployed application 'greeter' at http://127.0.0.1:{port}/.",
        f"Deployed application 'shouter' at http://127.0.0.1:{port}/shout."]
    status = serve_cli("status", env=head)
    assert status.returncode == 0, status.stderr
    parsed = yaml.safe_load(status.stdout)
    assert list(parsed) == ["proxy", "applications"]
    assert parsed["proxy"] == {"host": "127.0.0.1", "port": port}
    assert parsed["applications"]["shouter"]["route_prefix"] == "/shout"
    # the apps outlive the command that deployed them
    wait_for_condition(lambda: app_statuses(head) == {"greeter": "RUNNING",
                                                      "shouter": "RUNNING"}, timeout=DEADLINE)
    down = serve_cli("shutdown", "-y", env=head)
    assert (down.returncode, down.stdout.strip()) == (0, "Shut down Serve."), down.stderr
    assert yaml.safe_load(serve_cli("status", env=head).stdout) == {"proxy": None,
                                                                  "applications": {}}
    again = serve_cli("shutdown", "-y", env=head)
    assert again.returncode == 0 and "not running" in again.stdout


def test_deployed_apps_answer_after_deploy_exits(head, tmp_path):
    port = free_port()
    deployed = serve_cli("deploy", config_on(tmp_path, port), env=head)
    try:
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        base = f"http://127.0.0.1:{port}"
        wait_for_condition(lambda: app_statuses(head) == {"greeter": "RUNNING",
                                                          "shouter": "RUNNING"},
                           timeout=DEADLINE)
        wait_for_condition(lambda: answers(f"{base}/?name=a", "hello a"), timeout=DEADLINE)
        assert answers(f"{base}/shout?name=b", "HEY b")
    finally:
        assert serve_cli("shutdown", "-y", env=head).returncode == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(base, timeout=5)
