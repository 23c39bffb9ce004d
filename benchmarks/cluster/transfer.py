"""Cross-node object transfer throughput, against a loopback socket copy.

Two simulated nodes on this machine (``skate.cluster_utils.Cluster``), each
with its own node manager and shared-memory arena. For each size an array is
``put`` on the head (the driver's node), then a task pinned to the other node
(hard ``NodeAffinitySchedulingStrategy``) gets it:

* ``transfer``: timed inside the task, around ``skate.get`` of the ref (passed
  nested in a list, so the task starts before the bytes move) and ``len``: the
  pull into the second node's arena (over the node managers' plain-socket
  object stream, gRPC being the fallback), and mapping it. This is the number
  compared with the socket.
* ``task``: the driver's wall time for the whole task (submit, pull, reply);
  it shows the overhead around the transfer.

Every repetition uses a fresh object (a node keeps the copies it pulled, so a
second read of the same object would not move bytes).

Two references, each asked for and received by this process from a spawned
sender, into a buffer touched beforehand (so no page faults are counted):

* ``socket``: one TCP stream over 127.0.0.1 (``sendall`` / ``recv_into``),
  what a single connection on this machine can do. The target is that a
  transfer reaches at least half of it.
* ``plain gRPC``: the same bytes as a gRPC stream of 4 MiB messages, the shape
  of Skate's fallback transfer (and, until 2026-11, its only one) without Skate
  around it: the ceiling of that design.

Usage::

    python benchmarks/cluster/transfer.py                     # 100 MB, 500 MB, 1 GB
    python benchmarks/cluster/transfer.py --sizes-mb 100 --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time

MB = 1000 * 1000  # sizes in decimal MB, throughput in GB/s (1e9 bytes)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


# ------------------------------------------------------------------ the references
CHUNK = 4 * 1024 * 1024  # as Skate's gRPC transfer


def _data(nbytes: int):
    import numpy as np

    return np.random.default_rng(nbytes).integers(0, 255, nbytes, dtype=np.uint8)


def _socket_sender(port: int, nbytes: int, repeats: int) -> None:
    """Child process: on each request byte, send the whole buffer."""
    view = memoryview(_data(nbytes))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        for _ in range(repeats):
            if s.recv(1) != b"g":
                return
            s.sendall(view)


def socket_seconds(nbytes: int, repeats: int) -> list[float]:
    """Seconds from asking to having all ``nbytes`` over one loopback TCP stream, per repeat.

    The receiver (this process) reads into a buffer touched beforehand, so no
    page faults are counted: the best a single connection does here.
    """
    import numpy as np

    buf = np.ones(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    ctx = multiprocessing.get_context("spawn")
    with socket.create_server(("127.0.0.1", 0)) as server:
        child = ctx.Process(target=_socket_sender,
                            args=(server.getsockname()[1], nbytes, repeats))
        child.start()
        conn, _ = server.accept()
    times = []
    with conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
        for _ in range(repeats):
            start = time.perf_counter()
            conn.sendall(b"g")
            got = 0
            while got < nbytes:
                n = conn.recv_into(view[got:], min(nbytes - got, CHUNK))
                if n == 0:
                    raise ConnectionError("the sender closed early")
                got += n
            times.append(time.perf_counter() - start)
    child.join()
    return times


def _grpc_sender(nbytes: int, port_out) -> None:
    """Child process: serve the buffer as a gRPC stream of CHUNK-sized messages."""
    from concurrent import futures

    import grpc

    view = memoryview(_data(nbytes))

    def pull(request, context):
        for pos in range(0, nbytes, CHUNK):
            yield bytes(view[pos:pos + CHUNK])

    server = grpc.server(futures.ThreadPoolExecutor(2),
                         options=[("grpc.max_send_message_length", CHUNK + 1024)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bench.Transfer", {"Pull": grpc.unary_stream_rpc_method_handler(pull)}),))
    port_out.send(server.add_insecure_port("127.0.0.1:0"))
    server.start()
    port_out.recv()  # until the parent is done
    server.stop(0)


def grpc_seconds(nbytes: int, repeats: int) -> list[float]:
    """The same as ``socket_seconds`` through a plain gRPC stream of 4 MiB messages
    (the shape of Skate's transfer, without Skate), copied into a touched buffer."""
    import grpc
    import numpy as np

    buf = np.ones(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_grpc_sender, args=(nbytes, theirs))
    child.start()
    times = []
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{ours.recv()}",
                                        options=[("grpc.max_receive_message_length",
                                                  CHUNK + 1024)])
        call = channel.unary_stream("/bench.Transfer/Pull")
        for _ in range(repeats):
            start = time.perf_counter()
            pos = 0
            for chunk in call(b""):
                view[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
            times.append(time.perf_counter() - start)
            if pos != nbytes:
                raise RuntimeError(f"gRPC reference moved {pos} of {nbytes} bytes")
        channel.close()
    finally:
        ours.send("done")
        child.join()
    return times


# ---------------------------------------------------------------- the transfer
def skate_transfer_seconds(sizes: list[int], repeats: int) -> dict:
    """{size: {"transfer": [s, ...], "task": [s, ...]}} over a two-node Skate cluster."""
    import numpy as np

    import skate
    from skate.cluster_utils import Cluster
    from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    store = int(max(sizes) * 2.5) + (64 << 20)  # the object, a stale copy, headroom
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "object_store_memory": store})
    try:
        other = cluster.add_node(num_cpus=1, object_store_memory=store)
        cluster.connect()
        on_other = NodeAffinitySchedulingStrategy(node_id=other.node_id, soft=False)

        @skate.remote(scheduling_strategy=on_other)
        def pull(refs):
            start = time.perf_counter()
            n = len(skate.get(refs[0]))
            return n, time.perf_counter() - start, skate.get_runtime_context().get_node_id()

        # warm: the worker on the other node exists and has imported numpy
        assert skate.get(pull.remote([skate.put(np.zeros(1 << 20, np.uint8))]))[2] == \
            other.node_id
        results = {}
        for size in sizes:
            data = _data(size)
            transfer, task = [], []
            for _ in range(repeats):
                ref = skate.put(data)  # a fresh object on the head each time
                start = time.perf_counter()
                n, inside, where = skate.get(pull.remote([ref]))
                task.append(time.perf_counter() - start)
                if n != size or where != other.node_id:
                    raise RuntimeError(f"pulled {n} bytes on {where}, expected {size} on "
                                       f"{other.node_id}")
                transfer.append(inside)
                del ref
            results[size] = {"transfer": transfer, "task": task}
            del data
        return results
    finally:
        if skate.is_initialized():
            skate.shutdown()
        cluster.shutdown()


# ---------------------------------------------------------------------- report
def _gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 500, 1000],
                   help="object sizes in MB (1e6 bytes)")
    p.add_argument("--repeats", type=int, default=3,
                   help="transfers per size, each of a fresh object; the table shows the median")
    p.add_argument("--json", help="also write the raw timings here")
    args = p.parse_args(argv)
    sizes = [mb * MB for mb in args.sizes_mb]

    # the references first, in spawned processes: nothing of Skate's is running yet
    socket_times = {size: socket_seconds(size, args.repeats) for size in sizes}
    grpc_times = {size: grpc_seconds(size, args.repeats) for size in sizes}
    skate_times = skate_transfer_seconds(sizes, args.repeats)

    header = (f"{'size':>8} | {'skate transfer GB/s':>19} | {'skate task GB/s':>15} | "
              f"{'plain gRPC GB/s':>15} | {'socket GB/s':>11} | {'skate / socket':>14}")
    print(header)
    print("-" * len(header))
    rows = []
    for size in sizes:
        t = statistics.median(skate_times[size]["transfer"])
        w = statistics.median(skate_times[size]["task"])
        g = statistics.median(grpc_times[size])
        s = statistics.median(socket_times[size])
        row = {"size_mb": size // MB, "transfer_gbps": _gbps(size, t),
               "task_gbps": _gbps(size, w), "grpc_gbps": _gbps(size, g),
               "socket_gbps": _gbps(size, s), "ratio": s / t,
               "raw": {"transfer_s": skate_times[size]["transfer"],
                       "task_s": skate_times[size]["task"], "grpc_s": grpc_times[size],
                       "socket_s": socket_times[size]}}
        rows.append(row)
        print(f"{size // MB:>5} MB | {row['transfer_gbps']:>19.2f} | {row['task_gbps']:>15.2f} | "
              f"{row['grpc_gbps']:>15.2f} | {row['socket_gbps']:>11.2f} | "
              f"{row['ratio']:>13.0%}")
    print(f"(median of {args.repeats}; GB = 1e9 bytes; {os.cpu_count()} cores)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
