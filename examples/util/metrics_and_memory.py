"""Application metrics and who holds which objects: skate.util.metrics and the state API.

    python examples/util/metrics_and_memory.py
"""

import time

import numpy as np

import skate
from skate.util import state
from skate.util.metrics import Counter, Histogram, prometheus_text


@skate.remote
def score(batch):
    # a metric defined in the task: its updates are summed with the driver's, per node
    Counter("example_batches", "Batches scored.", tag_keys=("kind",)).inc(tags={"kind": "task"})
    Histogram("example_batch_s", "Time per batch.", boundaries=[0.001, 0.01, 0.1]).observe(0.002)
    print(f"scored a batch of {len(batch)}")
    return float(batch.sum())


if __name__ == "__main__":
    skate.init(num_cpus=2)
    data = skate.put(np.ones(5_000_000))  # 40 MB in the object store, owned by this driver
    totals = skate.get([score.remote(data) for _ in range(4)])
    Counter("example_batches", "Batches scored.", tag_keys=("kind",)).inc(
        len(totals), tags={"kind": "driver"})

    (row,) = [r for r in state.list_objects() if r.object_id == data.hex()]
    print(f"the array: {row.object_size} bytes, {row.store_state}, held by pid {row.pid} "
          f"({row.reference_type}, made by {row.call_site})")
    for name, kinds in state.list_logs().items():
        print(f"node {name[:12]}: {len(kinds.get('worker_out', []))} worker log file(s)")

    deadline = time.monotonic() + 15  # processes send their metrics about once a second
    while 'kind="task"} 4.0' not in (text := prometheus_text()):
        assert time.monotonic() < deadline, "the metrics never arrived"
        time.sleep(0.2)
    print("\n".join(line for line in text.splitlines() if line.startswith("example_batches")))
    skate.shutdown()
