"""The ``skate`` command.

    skate start --head [--port 6380] [--num-cpus N] [--num-gpus N] [--resources JSON]
                       [--object-store-memory BYTES] [--session-dir DIR]
                       [--include-dashboard true|false] [--dashboard-host H] [--dashboard-port P]
                       [--dashboard-read-token]
                       [--metrics-export-port P] [--metrics-export-host H]
    skate stop
    skate job submit|status|logs|stop|delete|list ...   # the jobs API (docs/jobs.md)
    skate status
    skate list actors|nodes|placement-groups|jobs [--filter K=V] [--limit N] [--format F]
    skate get actors|nodes|placement-groups|jobs ID
    skate summary tasks|actors
    skate timeline [--output FILE]
    skate microbenchmark [--filter NAME] [--duration S]   # Ray's microbenchmark lines
    skate --version
"""

from __future__ import annotations

import argparse
import json
import sys

from skate.scripts import job_cli, state_cli


def _start(args) -> int:
    import os

    from skate.core.config import default_object_store_memory
    from skate.core.node import read_current, start_head, write_current

    if not args.head and not args.address:
        print("Give --head to start a head, or --address=HOST:PORT to join one.", file=sys.stderr)
        return 2
    if not args.head:
        return _join(args)
    current = read_current()
    if current is not None:
        return _restart_control_store(args, current)
    custom = _resources_from(args)
    if custom is None:
        return 2
    store = args.object_store_memory or default_object_store_memory()
    total = {"CPU": args.num_cpus if args.num_cpus is not None else os.cpu_count() or 1,
             "GPU": args.num_gpus or 0, **custom, "object_store_memory": store,
             f"node:{args.node_ip_address}": 1, "node:__internal_head__": 1}
    total = {k: v for k, v in total.items() if v}
    token = args.token or os.environ.get("SKATE_TOKEN") or None
    try:
        node = start_head(total, store, owner_pid=0, node_ip=args.node_ip_address,
                          gcs_port=args.port, session_dir=args.session_dir, reachable=True,
                          token=token)
    except ValueError as e:  # a malformed token
        print(f"skate start: {e}", file=sys.stderr)
        return 2
    tcp = f"grpc:{args.node_ip_address}:{args.port}"
    dashboard = _start_dashboard(args, node) if args.include_dashboard else None
    exporter = _start_exporter(args, node) if args.metrics_export_port is not None else None
    write_current(node, {"tcp_address": tcp,
                         **({"dashboard_url": dashboard.url, "dashboard_pid": dashboard.pid}
                            if dashboard else {}),
                         **({"metrics_export_url": exporter[0],
                             "metrics_export_pid": exporter[1]} if exporter else {})})
    print(f"Started a Skate head (session {node.session_dir}).\n"
          f"  Restart it later with its state:   skate start --head --session-dir "
          f"{node.session_dir}\n"
          f"  Connect a driver on this machine:  skate.init(address='auto')\n"
          f"  Control store:                     {args.node_ip_address}:{args.port}\n"
          f"  Cluster token (mode 0600):         {os.path.join(node.session_dir, 'token')}\n"
          + (f"  Dashboard and jobs API:            {dashboard.url}\n" if dashboard else "")
          + (f"  Prometheus metrics (no token):     {exporter[0]}\n" if exporter else "")
          + ("  Stop it:                           SIGTERM or ^C (--block)" if args.block
             else "  Stop it:                           skate stop"), flush=True)
    if args.block:
        from skate.core.node import stop_current

        return _block(node, stop_current)
    return 0


def _restart_control_store(args, current: dict) -> int:
    """``skate start --head`` while this machine's head is partly up: if its control store
    alone died, start it again (the rest reconnects); else the head is running."""
    import os

    from skate.core.node import restart_control_store
    from skate.core.pids import alive
    from skate.exceptions import RaySystemError

    pids = current.get("pids", [])
    same = args.session_dir is None or \
        os.path.realpath(args.session_dir) == os.path.realpath(current["session_dir"])
    if not pids or alive(pids[0]) or not same:
        print("A Skate head is already running on this machine; `skate stop` it first.",
              file=sys.stderr)
        return 1
    try:
        pid = restart_control_store(current)
    except RaySystemError as e:
        print(f"skate start: {e}", file=sys.stderr)
        return 1
    print(f"Restarted the control store of the running head (session "
          f"{current['session_dir']}, pid {pid}); its nodes, workers and drivers reconnect.",
          flush=True)
    return 0


def _block(node, stop) -> int:
    """``--block``: stay in the foreground until SIGTERM/SIGINT (then stop the node: 0) or
    one of the node's processes exits on its own (then stop the rest: 1)."""
    import signal
    import threading

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    died = None
    while not done.wait(0.5):
        died = next((p for p in node.procs if p.poll() is not None), None)
        if died is not None:
            break
    stop()
    if died is not None:
        print(f"skate start: a process of this node exited (pid {died.pid}, status "
              f"{died.returncode}); stopped the rest. Its logs: "
              f"{node.session_dir}/logs", file=sys.stderr)
        return 1
    return 0


def _start_dashboard(args, node):
    """Spawn the head's dashboard (it never delays the head: the socket is bound here and
    the process is not waited for); None, with a warning, if it cannot start."""
    from skate.dashboard.launch import DashboardUnavailable, start_dashboard

    try:
        return start_dashboard(node.session_dir, node.gcs_address, host=args.dashboard_host,
                               port=args.dashboard_port, read_token=args.dashboard_read_token,
                               token=node.token)
    except DashboardUnavailable as e:
        print(f"Warning: the dashboard was not started: {e}", file=sys.stderr)
        return None


def _start_exporter(args, node):
    """Start the head's token-free metrics endpoint and wait until it listens; (url, pid),
    or None with a warning if it cannot start (the head runs without it)."""
    from skate.core.node import start_metrics_exporter
    from skate.exceptions import RaySystemError

    try:
        return start_metrics_exporter(node.session_dir, node.gcs_address, node.token,
                                      host=args.metrics_export_host,
                                      port=args.metrics_export_port)
    except RaySystemError as e:
        print(f"Warning: {e}", file=sys.stderr)
        return None


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _resources_from(args) -> dict | None:
    try:
        custom = json.loads(args.resources) if args.resources else {}
    except ValueError as e:
        print(f"--resources must be JSON, e.g. '{{\"x\": 1}}': {e}", file=sys.stderr)
        return None
    if not isinstance(custom, dict):
        print("--resources must be a JSON object of name -> amount", file=sys.stderr)
        return None
    return custom


def _join(args) -> int:
    """Start a node manager on this machine that joins the head at --address."""
    import os

    from skate.core.config import default_object_store_memory
    from skate.core.node import read_current, read_token, record_joined_node, start_worker_node

    custom = _resources_from(args)
    if custom is None:
        return 2
    address = args.address if args.address.startswith(("grpc:", "tcp:", "unix:")) \
        else f"grpc:{args.address}"
    current = read_current()
    token = args.token or os.environ.get("SKATE_TOKEN") or (
        read_token(current["session_dir"]) if current else None)
    if not token:
        print("Joining needs the cluster token: pass --token or set SKATE_TOKEN (it is in the "
              "head's session directory, file 'token').", file=sys.stderr)
        return 2
    store = args.object_store_memory or default_object_store_memory()
    total = {"CPU": args.num_cpus if args.num_cpus is not None else os.cpu_count() or 1,
             "GPU": args.num_gpus or 0, **custom, "object_store_memory": store,
             f"node:{args.node_ip_address}": 1}
    try:
        node = start_worker_node(address, {k: v for k, v in total.items() if v}, store, token,
                                 owner_pid=0, node_ip=args.node_ip_address, reachable=True)
    except Exception as e:
        print(f"Could not join {args.address}: {e}", file=sys.stderr)
        return 1
    record_joined_node(node)
    print(f"Joined the cluster at {args.address} as node {node.node_id}.", flush=True)
    if args.block:
        from skate.core.node import forget_joined_node

        def stop():
            node.stop()
            forget_joined_node(node)

        return _block(node, stop)
    return 0


def _stop(args) -> int:
    from skate.core.node import stop_current, stop_joined_nodes

    joined = stop_joined_nodes()
    if joined:
        print(f"Stopped {joined} node(s) that joined from this machine.")
    if stop_current():
        print("Stopped the Skate head started on this machine.")
    elif not joined:
        print("No Skate head started on this machine is running.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``skate`` command's parser (deploy/kubernetes' commands are checked with it)."""
    p = argparse.ArgumentParser(prog="skate", description="Skate command line.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")
    st = sub.add_parser("start", help="start a long-running head on this machine")
    st.add_argument("--head", action="store_true", help="start the head node")
    st.add_argument("--address", help="HOST:PORT of a head to join")
    st.add_argument("--port", type=int, default=6380, help="control store TCP port")
    st.add_argument("--num-cpus", type=int, default=None)
    st.add_argument("--num-gpus", type=int, default=None)
    st.add_argument("--resources", default=None, help='custom resources as JSON: \'{"x": 1}\'')
    st.add_argument("--object-store-memory", type=int, default=None)
    st.add_argument("--node-ip-address", default="127.0.0.1")
    st.add_argument("--token", default=None,
                    help="the cluster token: a head uses it instead of making one, a node "
                         "presents it to join (default: SKATE_TOKEN)")
    st.add_argument("--block", action="store_true",
                    help="stay in the foreground until SIGTERM/^C, then stop the node (for "
                         "systemd and containers)")
    st.add_argument("--session-dir", default=None,
                    help="reuse this session directory (restarts keep detached actors and KV)")
    st.add_argument("--include-dashboard", type=_bool, default=True, metavar="true|false",
                    help="start the dashboard and jobs API with the head (default true)")
    st.add_argument("--dashboard-host", default="127.0.0.1",
                    help="interface the dashboard listens on (default 127.0.0.1)")
    st.add_argument("--dashboard-port", type=int, default=8265,
                    help="the dashboard's port (default 8265; 0 picks a free one)")
    st.add_argument("--dashboard-read-token", action="store_true",
                    help="the dashboard's reads need the cluster token too (writes always do)")
    st.add_argument("--metrics-export-port", type=int, default=None, metavar="PORT",
                    help="serve the cluster's metrics to Prometheus at http://HOST:PORT/metrics, "
                         "read-only and without the token (0 picks a free port)")
    st.add_argument("--metrics-export-host", default="127.0.0.1", metavar="HOST",
                    help="interface the metrics endpoint listens on (default 127.0.0.1)")
    sub.add_parser("stop", help="stop the head this machine started")
    sub.add_parser("microbenchmark", help="run the core microbenchmarks (Ray's definitions)",
                   add_help=False)
    state_cli.add_parsers(sub)
    job_cli.add_parser(sub)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args, rest = p.parse_known_args(argv)
    if args.version:
        from skate import __version__

        print(f"skate {__version__}")
        return 0
    if args.command == "microbenchmark":
        from skate.scripts import microbenchmark

        # main() returns the results dict; as an exit status sys.exit would print it and exit 1
        microbenchmark.main(["--backend", "skate", *rest])
        return 0
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    handlers = {"start": _start, "stop": _stop,
                **dict.fromkeys(state_cli.COMMANDS, state_cli.run), "job": job_cli.run}
    if args.command in handlers:
        return handlers[args.command](args)
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
