"""The head's control store kill -9'd mid-run and started again: nothing lost.

    python benchmarks/chaos/head_restart.py [--tasks 20000] [--calls 3000] [--down-s 2]
        [--kills 2]

A `skate start --head` cluster (2 CPUs, its own temp dir and port) and a driver
(this file with ``--child``) that, in a loop until every piece is done, submits
tasks (1 ms each, results checked) and calls a detached counter actor and a
non-detached one, each call's number checked against the actor's own count: a
gap or repeat means an actor lost its state or ran a call twice. The parent
kill -9s the control store ``--kills`` times while that runs, waits ``--down-s``
and runs `skate start --head` again (it restarts only the control store).
Printed as JSON: every check, the same work's wall time quiet and under the
kills, and per restart the recovery time: from `skate start --head` to the
driver's first answer from the control store after it (a thread of the
driver asks `skate.nodes()` every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(tasks: int, calls: int) -> None:
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    import skate

    skate.init(address="auto", namespace="head-restart")

    @skate.remote
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

    @skate.remote
    def square(x):
        time.sleep(0.001)
        return x * x

    def work():
        detached = Counter.options(lifetime="detached", name=f"c{time.time_ns()}").remote()
        mine = Counter.remote()
        t = time.monotonic()
        refs = [square.remote(i) for i in range(tasks)]
        seen = {"detached": [], "mine": []}
        for _ in range(calls):
            seen["detached"].append(skate.get(detached.incr.remote(), timeout=120))
            seen["mine"].append(skate.get(mine.incr.remote(), timeout=120))
        ok_tasks = skate.get(refs, timeout=300) == [i * i for i in range(tasks)]
        wall = time.monotonic() - t
        expect = list(range(1, calls + 1))
        return {"tasks_ok": ok_tasks, "detached_calls_ok": seen["detached"] == expect,
                "own_calls_ok": seen["mine"] == expect, "wall_s": round(wall, 2)}

    quiet = work()
    print(json.dumps({"quiet": quiet}), flush=True)
    sys.stdin.readline()  # the parent starts killing
    answered = []  # when a call that needs the control store (skate.nodes()) came back

    def ping():
        while not stop.is_set():
            skate.nodes()
            answered.append(time.time())
            stop.wait(0.02)

    stop = threading.Event()
    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    chaos = work()
    stop.set()
    pinger.join(130)
    print(json.dumps({"chaos": chaos}), flush=True)
    # the parent says when it started each restart: until the first answer after it
    recovery = []
    for line in sys.stdin:
        if not line.strip():
            break
        t = float(line)
        after = [x for x in answered if x > t]
        recovery.append(round(after[0] - t, 3) if after else None)  # None: work ended first
    print(json.dumps({"recovery_s": recovery}), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=20000)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--down-s", type=float, default=2.0)
    p.add_argument("--kills", type=int, default=2)
    p.add_argument("--port", type=int, default=6398)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.tasks, a.calls)
        return 0
    temp = tempfile.mkdtemp(prefix="skhr-", dir="/tmp")
    env = dict(os.environ, SKATE_TEMP_DIR=temp, PYTHONPATH=REPO_ROOT)
    cli = [sys.executable, "-m", "skate.scripts.skate_cli"]

    def skate_cli(*args):
        return subprocess.run(cli + list(args), env=env, capture_output=True, text=True,
                              timeout=120)

    started = skate_cli("start", "--head", "--num-cpus", "2", "--port", str(a.port),
                        "--include-dashboard", "false")
    if started.returncode != 0:
        print(started.stderr, file=sys.stderr)
        return 1
    driver = subprocess.Popen([sys.executable, __file__, "--child", "--tasks", str(a.tasks),
                               "--calls", str(a.calls)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out: dict = {"kills": 0}
    try:
        out.update(json.loads(driver.stdout.readline()))
        driver.stdin.write("go\n")
        driver.stdin.flush()
        quiet_s = out["quiet"]["wall_s"]
        restarts = []
        for k in range(a.kills):
            time.sleep(max(0.0, quiet_s / (a.kills + 1) - a.down_s))  # spread over the run
            with open(os.path.join(temp, "current.json")) as f:
                gcs = json.load(f)["pids"][0]
            os.kill(gcs, signal.SIGKILL)
            out["kills"] += 1
            time.sleep(a.down_s)
            t = time.time()
            again = skate_cli("start", "--head")
            restarts.append((t, again.returncode, again.stdout.strip()[:80]))
        out.update(json.loads(driver.stdout.readline()))
        for t, _, _ in restarts:
            driver.stdin.write(f"{t}\n")
        driver.stdin.write("\n")
        driver.stdin.flush()
        out.update(json.loads(driver.stdout.readline()))
        out["restarts_ok"] = all(rc == 0 for _, rc, _ in restarts)
        out["ratio"] = round(out["quiet"]["wall_s"] / out["chaos"]["wall_s"], 2)
        driver.stdin.close()
        driver.wait(60)
    finally:
        if driver.poll() is None:
            driver.kill()
        skate_cli("stop")
    checks = [out.get("restarts_ok"), *(out["chaos"].get(k) for k in
                                       ("tasks_ok", "detached_calls_ok", "own_calls_ok"))]
    out["ok"] = all(checks)
    print(json.dumps(out, indent=1))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
