"""Watch a cluster through the dashboard: an actor's output as it prints (a live log tail),
a Tune run's trials and their curves, the cluster's metrics in Prometheus' format.

    python examples/dashboard/watch_a_run.py          # a private cluster; it exits when done
    python examples/dashboard/watch_a_run.py --keep   # then keeps the page up until Ctrl-C

It starts a private cluster and its dashboard (``skate start --head`` does both for a
long-running one) and reads what the page shows from the dashboard's JSON API.
"""

import argparse
import json
import os
import threading
import time
import urllib.request

import skate
from skate import tune
from skate.dashboard import start_dashboard


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read().decode()
    return json.loads(body) if resp.headers["Content-Type"].startswith("application/json") \
        else body


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url + "/api/version")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@skate.remote
class Narrator:
    """An actor that prints: its output lands in a log file on its node."""

    def say(self, text: str) -> None:
        print(text, flush=True)


def trainable(config):
    for step in range(1, 6):
        tune.report({"loss": config["lr"] * 10 / step})


def follow(url: str, lines: list, stop: threading.Event) -> None:
    """Read the live tail (GET /api/logs/stream) until told to stop: the dashboard closes its
    end (and its connection to the node) once this client goes."""
    with urllib.request.urlopen(url, timeout=30) as stream:
        while not stop.is_set():
            line = stream.readline().decode().rstrip("\n")
            if line:
                lines.append(line)
                print(f"  [live tail] {line}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the dashboard up until Ctrl-C")
    args = p.parse_args()

    ctx = skate.init(num_cpus=2, log_to_driver=False)
    dash = start_dashboard(ctx["session_dir"], ctx["gcs_address"], port=0, owner_pid=os.getpid())
    try:
        wait_for(dash.url)
        print(f"Dashboard: {dash.url}")

        narrator = Narrator.remote()
        skate.get(narrator.say.remote("the narrator is ready"))
        actor_id = narrator._actor_id.hex()
        lines: list = []
        stop = threading.Event()
        reader = threading.Thread(target=follow, daemon=True, args=(
            f"{dash.url}/api/logs/stream?actor_id={actor_id}&tail=1", lines, stop))
        reader.start()
        while not lines:  # the tail has begun
            time.sleep(0.05)
        skate.get(narrator.say.remote("a Tune run begins"))

        tune.run(trainable, config={"lr": tune.grid_search([0.1, 0.3])}, name="watched",
                 metric="loss", mode="min", verbose=0)
        skate.get(narrator.say.remote("the Tune run ended"))

        # what the Tune tab shows: the runner publishes a summary every 2 s and at the end
        exp = get(f"{dash.url}/api/tune/tune/watched")
        print(f"\nExperiment {exp['name']}: {exp['status']}, trials {exp['trial_counts']}")
        for trial in exp["trials"]:
            curve = ", ".join(f"{v:.2f}" for v in trial["history"]["loss"])
            print(f"  {trial['name']}  lr={trial['config']['lr']}  loss per iteration: {curve}")

        # what a Prometheus server scrapes; processes send their metrics about every second
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = [line for line in get(f"{dash.url}/metrics").splitlines()
                    if line.startswith("tune_trials{") and 'status="TERMINATED"' in line]
            if done and done[0].endswith(" 2.0"):
                break
            time.sleep(0.2)
        print("\nFrom /metrics:", *done, sep="\n  ")

        deadline = time.monotonic() + 10
        while "the Tune run ended" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        skate.get(narrator.say.remote("goodbye"))  # wakes the reader up so it can stop
        reader.join(10)
        assert "the Tune run ended" in lines, lines

        if args.keep:
            print(f"\nOpen {dash.url} (Tune, Logs, Objects tabs); Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        dash.stop()
        skate.shutdown()


if __name__ == "__main__":
    main()
