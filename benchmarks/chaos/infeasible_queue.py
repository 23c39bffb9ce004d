"""Feasible task throughput with and without 10,000 queued infeasible tasks, in one run.

On a private 2-CPU node: ``--tasks`` 1 ms tasks submitted at once and
gathered, quiet; then the same while ``--infeasible`` tasks that ask for
``num_cpus=100`` (no node can ever run them) wait in the queue; then quiet
again after they are cancelled. The three phases alternate ``--rounds``
times and the best of each is reported, so a slow moment of the machine
does not make the ratio. Also printed: what submitting and cancelling the
infeasible tasks cost. Every result is checked; every phase has a deadline.
``--backend skate|ray`` picks the system (imported under the name ``ray``)::

    python benchmarks/chaos/infeasible_queue.py
    /work/ray-venv/bin/python benchmarks/chaos/infeasible_queue.py --backend ray
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import warnings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("skate", "ray"), default="skate")
    p.add_argument("--tasks", type=int, default=2000, help="feasible tasks per measurement")
    p.add_argument("--infeasible", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--deadline", type=float, default=120, help="seconds per phase at most")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    # the node warns that the infeasible tasks cannot be scheduled: that is the point here
    warnings.filterwarnings("ignore", message="A task or actor needs")
    ray = importlib.import_module(a.backend)
    ray.init(num_cpus=2)

    @ray.remote
    def tiny(i):
        time.sleep(0.001)
        return i

    def feasible_per_s() -> float:
        t = time.perf_counter()
        refs = [tiny.remote(i) for i in range(a.tasks)]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=a.deadline)
        if len(ready) < len(refs):
            raise SystemExit(f"only {len(ready)}/{len(refs)} feasible tasks in {a.deadline} s")
        assert ray.get(refs) == list(range(a.tasks)), "a wrong result"
        return a.tasks / (time.perf_counter() - t)

    figures: dict = {"quiet": [], "queued": [], "after": [], "submit_s": [], "cancel_s": []}
    try:
        feasible_per_s()  # warm-up: workers started, the function exported
        for r in range(a.rounds):
            figures["quiet"].append(feasible_per_s())
            t = time.perf_counter()
            stuck = [tiny.options(num_cpus=100).remote(i) for i in range(a.infeasible)]
            figures["submit_s"].append(time.perf_counter() - t)
            figures["queued"].append(feasible_per_s())
            ready, _ = ray.wait(stuck, num_returns=len(stuck), timeout=0)
            assert not ready, "an infeasible task ran"
            t = time.perf_counter()
            for ref in stuck:
                ray.cancel(ref)
            done, _ = ray.wait(stuck, num_returns=len(stuck), timeout=a.deadline)
            figures["cancel_s"].append(time.perf_counter() - t)
            if len(done) < len(stuck):
                raise SystemExit(f"only {len(done)}/{len(stuck)} cancelled in {a.deadline} s")
            del stuck, done
            figures["after"].append(feasible_per_s())
            print(f"round {r + 1}: quiet {figures['quiet'][-1]:6.0f}/s  with "
                  f"{a.infeasible} infeasible queued {figures['queued'][-1]:6.0f}/s  after "
                  f"cancelling them {figures['after'][-1]:6.0f}/s  (submitting them "
                  f"{figures['submit_s'][-1]:.2f} s, cancelling {figures['cancel_s'][-1]:.2f} s)",
                  flush=True)
    finally:
        ray.shutdown()
    quiet, queued, after = (max(figures[k]) for k in ("quiet", "queued", "after"))
    ratio = queued / quiet
    print(f"{a.backend}: best of {a.rounds}: {a.tasks} feasible 1 ms tasks quiet {quiet:.0f}/s, "
          f"with {a.infeasible} infeasible queued {queued:.0f}/s (ratio {ratio:.2f}), after "
          f"cancelling them {after:.0f}/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**figures, "ratio": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
