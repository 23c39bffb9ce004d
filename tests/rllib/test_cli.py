"""The ``rllib`` command (skate/scripts/rllib_cli.py), run as a user runs it: real
processes, a private cluster per ``train``, files in a temporary storage folder.

Every process a command starts carries a marker in its environment, so a test can
check that none outlives the command (and end, by id, any that does)."""

import csv
import glob
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import psutil
import pytest

from tests.core.utils import REPO_ROOT, wait_for_condition

pytestmark = pytest.mark.skate_only
pytest.importorskip("gymnasium")
pytest.importorskip("torch")

from skate.scripts import rllib_cli  # noqa: E402

DEADLINE = 120  # seconds per command: the machine is small and shared
EXAMPLE = os.path.join(REPO_ROOT, "examples", "rllib", "tuned_examples", "cartpole-ppo.yaml")
SMALL = '{"train_batch_size": 512, "num_epochs": 2, "num_env_runners": 0}'
MARK = "SKATE_RLLIB_CLI_TEST"


def marked(mark: str) -> list:
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == mark and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


class CLI:
    """Runs ``python -m skate.scripts.rllib_cli``; remembers what it started."""

    def __init__(self, tmp_path):
        self.mark = uuid.uuid4().hex
        self.tmp_path = tmp_path
        self.pids: list = []
        env = {k: v for k, v in os.environ.items() if k not in ("SKATE_ADDRESS", "RAY_ADDRESS",
                                                                "DISPLAY", "WAYLAND_DISPLAY")}
        self.env = {**env, MARK: self.mark, "SKATE_RESULTS_DIR": str(tmp_path / "results")}

    def popen(self, *args):
        proc = subprocess.Popen([sys.executable, "-m", "skate.scripts.rllib_cli", *args],
                                cwd=REPO_ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.pids.append(proc.pid)
        return proc

    def __call__(self, *args, timeout=DEADLINE):
        proc = self.popen(*args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"rllib {' '.join(args)} ran past {timeout}s:\n{out}\n{err}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def leftovers(self) -> list:
        return marked(self.mark)


@pytest.fixture
def cli(tmp_path):
    runner = CLI(tmp_path)
    yield runner
    try:
        wait_for_condition(lambda: not runner.leftovers(), timeout=20)
    except Exception:  # noqa: BLE001 - end what this test started, then fail
        left = runner.leftovers()
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail(f"processes outlived the command: {[p.cmdline()[:4] for p in left]}")
    for pid in runner.pids:  # the object store's shared memory goes with its driver
        assert not glob.glob(f"/dev/shm/skate-s*-p{pid}-*"), f"shared memory of {pid} left"


def assert_one_line_error(proc, code, *words):
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rllib: error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def checkpoint_of(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("Last checkpoint: ")]
    assert len(lines) == 1, stdout
    return lines[0].split(": ", 1)[1]


# -- train, evaluate, list: the happy paths -------------------------------------------------------
def test_train_writes_results_and_a_checkpoint_that_evaluates(cli, tmp_path):
    t0 = time.monotonic()
    storage = tmp_path / "runs"
    run = cli("train", "--algo", "PPO", "--env", "CartPole-v1",
              "--stop", '{"training_iteration": 2}', "--config", SMALL,
              "--storage-path", str(storage))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["iter"])
    for column in ("return mean", "return max", "len mean", "env steps", "steps/s", "time"):
        assert column in lines[header]
    rows = [line.split() for line in lines[header + 1:header + 3]]
    assert [r[0] for r in rows] == ["1", "2"], run.stdout
    steps = [int(r[4]) for r in rows]
    assert 0 < steps[0] < steps[1], run.stdout
    assert "stopped at training_iteration >= 2" in run.stdout
    ckpt = checkpoint_of(run.stdout)
    assert os.path.exists(os.path.join(ckpt, "algorithm_state.json"))
    assert os.path.basename(ckpt) == "checkpoint_000002"
    trial_dir = os.path.dirname(ckpt)
    run_dir = os.path.dirname(trial_dir)
    assert f"Run folder: {run_dir}" in run.stdout and run_dir.startswith(str(storage))
    with open(os.path.join(trial_dir, "progress.csv")) as f:
        progress = list(csv.DictReader(f))
    assert [int(r["training_iteration"]) for r in progress] == [1, 2]
    with open(os.path.join(trial_dir, "result.json")) as f:
        results = [json.loads(line) for line in f if line.strip()]
    assert results[-1]["num_env_steps_sampled_lifetime"] == steps[1]
    with open(os.path.join(trial_dir, "params.json")) as f:
        params = json.load(f)
    assert params["train_batch_size"] == 512 and params["env"] == "CartPole-v1"
    t1 = time.monotonic()

    ev = cli("evaluate", ckpt, "--episodes", "2", "--seed", "3")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    episodes = [line for line in ev.stdout.splitlines() if line.startswith("episode ")]
    assert len(episodes) == 2, ev.stdout
    mean = [line for line in ev.stdout.splitlines() if line.startswith("Mean return over 2 ")]
    assert len(mean) == 1, ev.stdout
    value = float(mean[0].split(": ")[1].split()[0])
    returns = [float(line.split("return ")[1].split(",")[0]) for line in episodes]
    assert value == pytest.approx(sum(returns) / 2, abs=0.01) and value >= 1
    # no display in this environment: --render says so in one line
    assert_one_line_error(cli("evaluate", ckpt, "--render", "--episodes", "1"), 1, "display")
    print(f"train {t1 - t0:.1f}s, evaluate x2 {time.monotonic() - t1:.1f}s")


def test_list_names_every_algorithm(cli):
    from skate.rllib.registry import ALGORITHMS

    out = cli("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == sorted(ALGORITHMS)
    assert "PPO" in ALGORITHMS and "Proximal Policy Optimization" in out.stdout
    for name in ("APPO", "IMPALA", "SAC", "BC", "MARWIL"):
        assert name in ALGORITHMS


@pytest.mark.parametrize("algo,env,config", [
    ("APPO", "CartPole-v1", '{"min_sample_timesteps_per_iteration": 500}'),
    ("IMPALA", "CartPole-v1", '{"min_sample_timesteps_per_iteration": 500}'),
    ("SAC", "Pendulum-v1", '{"min_sample_timesteps_per_iteration": 150, '
                           '"num_steps_sampled_before_learning_starts": 100, '
                           '"model": {"fcnet_hiddens": [32]}}')])
def test_train_runs_the_newer_algorithms(cli, tmp_path, algo, env, config):
    run = cli("train", "--algo", algo, "--env", env, "--stop", '{"training_iteration": 1}',
              "--config", config, "--storage-path", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stopped at training_iteration >= 1" in run.stdout, run.stdout
    ckpt = checkpoint_of(run.stdout)
    with open(os.path.join(ckpt, "algorithm_state.json")) as f:
        assert json.load(f)["algorithm"] == algo


def test_record_with_ppo_then_train_bc_from_the_recording(cli, tmp_path):
    rec = tmp_path / "rec"
    run = cli("train", "--algo", "PPO", "--env", "CartPole-v1", "--output", str(rec),
              "--stop", '{"training_iteration": 2}', "--storage-path", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    steps = sum(1 for f in rec.glob("*.jsonl") for _ in open(f))
    assert f"ran 2 iterations, {steps} env steps" in run.stdout  # every step recorded
    run = cli("train", "--algo", "BC", "--env", "CartPole-v1", "--input", str(rec),
              "--stop", '{"training_iteration": 2}', "--storage-path", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    passes = 2 * -(-steps // 2000) * 2000  # a pass: every step, in minibatches of 2000
    assert f"{passes} recorded steps trained" in run.stdout, run.stdout
    assert "evaluation episode return mean" in run.stdout, run.stdout
    evaluated = cli("evaluate", checkpoint_of(run.stdout), "--episodes", "1")
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "Mean return over 1 episode:" in evaluated.stdout, evaluated.stdout
    assert_one_line_error(cli("train", "--algo", "BC", "--env", "CartPole-v1"), 2, "--input")
    assert_one_line_error(cli("train", "--algo", "MARWIL", "--env", "CartPole-v1", "--input",
                              str(tmp_path / "none")), 2, "--input", "not a folder")


def test_tuned_example_file_runs(cli, tmp_path):
    # the flat form, `run` for `algo`, its own tiny stop, a YAML 1.1 "1e-3" read as a float
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent("""
        run: PPO
        env: CartPole-v1
        stop: {training_iteration: 1}
        config:
          num_env_runners: 0
          train_batch_size: 256
          minibatch_size: 128
          num_epochs: 1
          lr: 1e-3
    """))
    run = cli("train", "-f", str(path), "--storage-path", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stopped at training_iteration >= 1" in run.stdout, run.stdout
    ckpt = checkpoint_of(run.stdout)
    with open(os.path.join(os.path.dirname(ckpt), "params.json")) as f:
        params = json.load(f)
    assert params["lr"] == 0.001 and params["train_batch_size"] == 256


# -- user mistakes: one line, exit 2, nothing started ---------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "syntax.yaml").write_text("algo: PPO\nenv: [CartPole-v1\n")
    (tmp_path / "noalgo.yaml").write_text("env: CartPole-v1\nstop: {training_iteration: 1}\n")
    (tmp_path / "unknown.yaml").write_text("algo: PPO\nenv: CartPole-v1\nstopp: {}\n")
    (tmp_path / "two.yaml").write_text("a: {run: PPO, env: CartPole-v1}\n"
                                       "b: {run: PPO, env: CartPole-v1}\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "notackpt").mkdir()
    return tmp_path


TRAIN = ["train", "--algo", "PPO", "--env", "CartPole-v1"]


@pytest.mark.parametrize("args, words", [
    (TRAIN + ["--bogus"], ["unrecognized arguments: --bogus"]),
    (["trian"], ["invalid choice: 'trian'", "train"]),
    (["train", "--algo", "PPOO", "--env", "CartPole-v1"], ["'PPOO'", "PPO"]),
    (["train", "--run", "DQNX", "--env", "CartPole-v1"], ["'DQNX'", "PPO"]),
    (["train", "--algo", "PPO", "--env", "CartPole-v9"], ["'CartPole-v9'", "CartPole-v1"]),
    (["train", "--algo", "PPO"], ["--env"]),
    (TRAIN + ["--config", '{"lr": 0.001,}'], ["--config", "not valid JSON", "column 14"]),
    (TRAIN + ["--stop", "{training_iteration: 2}"], ["--stop", "not valid JSON", "column 2"]),
    (TRAIN + ["--config", "[1, 2]"], ["--config", "JSON object"]),
    (TRAIN + ["--stop", '{"training_iteration": "ten"}'], ["training_iteration", "number"]),
    (TRAIN + ["--config", '{"lrr": 0.001}'], ["'lrr'", "did you mean lr"]),
    (TRAIN + ["--config", '{"num_env_runners": -2}'], ["num_env_runners", "-2"]),
    (TRAIN + ["--num-env-runners", "-1"], ["--num-env-runners"]),
    (TRAIN + ["--framework", "tf2"], ["--framework", "torch"]),
    (["train", "-f", "{dir}/missing.yaml"], ["no such file", "missing.yaml"]),
    (["train", "-f", "{dir}/syntax.yaml"], ["not valid YAML at line"]),
    (["train", "-f", "{dir}/noalgo.yaml"], ["missing key 'algo' (or 'run')"]),
    (["train", "-f", "{dir}/unknown.yaml"], ["stopp", "valid keys"]),
    (["train", "-f", "{dir}/two.yaml"], ["2 experiments"]),
    (["train", "-f", "{dir}/empty.yaml"], ["empty"]),
    (["evaluate", "{dir}/notackpt"], ["not an rllib checkpoint"]),
    (["evaluate", "{dir}/nothing_here"], ["no such checkpoint"]),
    (["evaluate", "{dir}/notackpt", "--episodes", "0"], ["--episodes"]),
])
def test_user_mistakes_are_one_line_and_exit_2(cli, bad_files, args, words):
    args = [a.replace("{dir}", str(bad_files)) for a in args]
    proc = cli(*args)
    assert_one_line_error(proc, 2, *words)
    assert not proc.stdout.startswith("Training"), proc.stdout  # refused before starting


# -- pieces, in this process -----------------------------------------------------------------
def test_live_table_redraws_in_place_on_a_terminal():
    class Trial:
        def __str__(self):
            return "PPO_0"

    def result(i):
        return {"training_iteration": i, "time_total_s": 1.5 * i, "env_steps_per_s": 1000.0,
                "num_env_steps_sampled_lifetime": 512 * i,
                "env_runners": {"episode_return_mean": 20.0 + i, "episode_return_max": 50.0,
                                "episode_len_mean": 20.0 + i}}

    out = io.StringIO()
    table = rllib_cli.LiveTable(out=out, tty=True, status="PPO on CartPole-v1")
    for i in (1, 2):
        table.on_trial_result(iteration=i, trials=[Trial()], trial=Trial(), result=result(i))
    table.on_experiment_end(trials=[Trial()])
    text = out.getvalue()
    assert "\x1b[3F\x1b[J" in text and "\x1b[4F\x1b[J" in text  # up over the last drawing
    assert "elapsed, training PPO on CartPole-v1" in text
    final = text.rsplit("\x1b[J", 1)[1].splitlines()
    assert final[0].split()[0] == "iter" and len(final) == 3  # no status line at the end
    assert final[2].split() == ["2", "22", "50", "22", "1024", "1000", "3.0s"]

    plain = io.StringIO()
    table = rllib_cli.LiveTable(out=plain, tty=False)
    for i in (1, 2, 3):
        table.on_trial_result(iteration=i, trials=[Trial()], trial=Trial(), result=result(i))
    lines = plain.getvalue().splitlines()
    assert "\x1b" not in plain.getvalue() and len(lines) == 4
    assert [line.split()[0] for line in lines] == ["iter", "1", "2", "3"]
    nan = dict(result(1), env_runners={"episode_return_mean": float("nan")})
    assert table.row(Trial(), nan).split()[1:4] == ["-", "-", "-"]  # no episode finished yet


def test_experiment_files_in_both_forms(tmp_path):
    name, spec = rllib_cli.load_experiment_file(EXAMPLE)
    assert name == "cartpole-ppo" and spec["algo"] == "PPO" and spec["env"] == "CartPole-v1"
    assert spec["stop"]["env_runners/episode_return_mean"] == 475
    assert isinstance(spec["config"]["lr"], float)
    flat = tmp_path / "flat.yaml"
    flat.write_text("algo: PPO\nconfig: {env: CartPole-v1, lr: 5e-4}\n"
                    "stop: {env_runners: {episode_return_mean: 100}}\n")
    name, spec = rllib_cli.load_experiment_file(str(flat))
    assert name is None and spec["env"] == "CartPole-v1" and spec["config"]["lr"] == 5e-4
    assert spec["stop"] == {"env_runners/episode_return_mean": 100}  # nested -> a/b keys


def test_shipped_example_config_is_valid():
    from skate.rllib.ppo import PPO

    _, spec = rllib_cli.load_experiment_file(EXAMPLE)
    args = rllib_cli._parser().parse_args(["train", "-f", EXAMPLE])
    cfg, origin = rllib_cli.build_config(PPO, spec["env"], spec["config"], EXAMPLE, args)
    rllib_cli.check_env(cfg)
    assert cfg["num_envs_per_env_runner"] == 32 and cfg["lambda"] == 0.8
    assert "cartpole-ppo.yaml" in origin or EXAMPLE in origin


def test_default_stop_and_old_metric_names():
    assert rllib_cli.default_stop("CartPole-v1") == {
        "env_runners/episode_return_mean": 475.0, "training_iteration": 200}
    assert rllib_cli.default_stop("Pendulum-v1") == {"training_iteration": 200}
    stop = rllib_cli.StopCriteria({"episode_reward_mean": 30, "timesteps_total": 1000}, "--stop")
    result = {"env_runners": {"episode_return_mean": 31.0},
              "num_env_steps_sampled_lifetime": 10}
    assert stop("t", result) is True and stop.met(result) == ["episode_reward_mean >= 30"]
    with pytest.raises(rllib_cli.UsageError, match="did you mean training_iteration"):
        rllib_cli.StopCriteria({"training_iteraton": 3}, "--stop")(
            "t", {"training_iteration": 1})


# -- longer runs ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_default_config_solves_cartpole(cli, tmp_path):
    # seeded, as the number of iterations to solve varies a lot (70-170 seen) without one
    run = cli("train", "--algo", "PPO", "--env", "CartPole-v1", "--seed", "0",
              "--storage-path", str(tmp_path / "runs"), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "until env_runners/episode_return_mean >= 475 or training_iteration >= 200" \
        in run.stdout
    assert "stopped at env_runners/episode_return_mean >= 475" in run.stdout, run.stdout[-3000:]
    ev = cli("evaluate", checkpoint_of(run.stdout), "--episodes", "3")
    assert ev.returncode == 0, ev.stderr
    mean = float(ev.stdout.split("Mean return over 3 episodes: ")[1].split()[0])
    assert mean >= 400, ev.stdout


@pytest.mark.slow
def test_shipped_example_solves_cartpole(cli, tmp_path):
    run = cli("train", "-f", EXAMPLE, "--seed", "1", "--storage-path", str(tmp_path / "runs"),
              timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stopped at env_runners/episode_return_mean >= 475" in run.stdout, run.stdout[-3000:]
    assert os.path.basename(os.path.dirname(os.path.dirname(checkpoint_of(run.stdout)))) \
        .startswith("cartpole-ppo_")


@pytest.mark.slow
def test_a_stop_key_no_result_has_is_one_line(cli, tmp_path):
    proc = cli(*TRAIN, "--config", SMALL, "--stop", '{"episode_return_maen": 100}',
               "--storage-path", str(tmp_path / "runs"))
    assert_one_line_error(proc, 2, "'episode_return_maen'",
                          "did you mean env_runners/episode_return_mean")


@pytest.mark.slow
def test_a_failing_trial_is_one_line_and_exit_1(cli, tmp_path):
    proc = cli(*TRAIN, "--config", '{"lr": "fast", "num_env_runners": 0}', "--storage-path",
               str(tmp_path / "runs"))
    assert_one_line_error(proc, 1, "failed", "TypeError", "error.txt")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly(cli, tmp_path):
    proc = cli.popen(*TRAIN, "--config", '{"num_env_runners": 1, "train_batch_size": 256, '
                     '"num_epochs": 1}', "--stop", '{"training_iteration": 100000}',
                     "--storage-path", str(tmp_path / "runs"))
    watchdog = threading.Timer(DEADLINE, proc.kill)  # a hung command cannot hang the test
    watchdog.start()
    seen = ""
    try:
        for line in proc.stdout:  # wait for the second table row
            seen += line
            if line.split()[:1] == ["2"]:
                break
    finally:
        watchdog.cancel()
    assert seen.splitlines()[-1].split()[:1] == ["2"], seen
    os.kill(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop `rllib train`")
    assert proc.returncode == 130, seen + out + err
    assert err.count("\n") == 1 and err.startswith("rllib: interrupted"), err
    assert "Traceback" not in err and str(tmp_path / "runs") in err
