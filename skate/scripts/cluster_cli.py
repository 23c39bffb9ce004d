"""``skate status`` / ``skate memory`` / ``skate logs``: what the nodes know, from the shell.

    skate status [--format table|json|yaml]
    skate memory [--group-by node|call-site] [--sort-by pid|size|reference-type]
                 [--units B|KB|MB|GB] [--stats-only]
    skate logs                                   # the log files of every node
    skate logs FILE [--node-id ID]               # one file (of the head by default)
    skate logs --actor-id ID | --task-id ID | --pid PID [--node-id ID]
               [--err] [--tail N] [--follow]
    skate metrics [--format prometheus|json]     # every metric of the cluster

Each asks the cluster this machine runs through ``skate.state`` (which asks
every node's manager); user mistakes print one line and exit 2, a missing
cluster exits 1.
"""

from __future__ import annotations

import sys
from collections import defaultdict

COMMANDS = ("status", "memory", "logs", "metrics")
UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def add_parsers(sub) -> None:
    st = sub.add_parser("status", help="nodes, resources and pending demand of the cluster")
    st.add_argument("--format", choices=("table", "json", "yaml"), default="table")
    mem = sub.add_parser("memory", help="who holds which object refs, sizes, pinned/spilled")
    mem.add_argument("--group-by", choices=("node", "call-site"), default="node")
    mem.add_argument("--sort-by", choices=("pid", "size", "reference-type"), default="pid")
    mem.add_argument("--units", choices=sorted(UNITS), default="B")
    mem.add_argument("--stats-only", action="store_true",
                     help="only the object stores' totals")
    logs = sub.add_parser("logs", help="list log files, or print one (an actor's, a task's)")
    logs.add_argument("file", nargs="?", help="a file of `skate logs`'s listing")
    logs.add_argument("--node-id", default=None, help="the node (a prefix will do)")
    who = logs.add_mutually_exclusive_group()
    who.add_argument("--actor-id", default=None, help="the output of this actor's process")
    who.add_argument("--task-id", default=None, help="the output of the worker it ran on")
    who.add_argument("--pid", type=int, default=None, help="the output of this worker")
    logs.add_argument("--err", action="store_true", help="stderr instead of stdout")
    logs.add_argument("--tail", type=int, default=1000, help="last N lines (-1: all)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    met = sub.add_parser("metrics", help="the cluster's metrics (Prometheus' text format)")
    met.add_argument("--format", choices=("prometheus", "json"), default="prometheus")


def run(args) -> int:
    from skate.scripts.state_cli import UsageError

    try:
        return {"status": _status, "memory": _memory, "logs": _logs,
                "metrics": _metrics}[args.command](args)
    except (UsageError, ValueError) as e:
        print(f"skate {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # no cluster, or it went away
        print(f"skate {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # --follow ends with ^C
        return 0
    except ImportError as e:  # prometheus_client missing
        print(f"skate {args.command}: {e}", file=sys.stderr)
        return 1


def _metrics(args) -> int:
    from skate.util import metrics

    if args.format == "json":
        import json

        print(json.dumps(metrics.snapshot(), indent=2))
    else:
        print(metrics.prometheus_text(), end="")
    return 0


# -- status ----------------------------------------------------------------------------------
def _status(args) -> int:
    from skate.scripts.state_cli import render
    from skate.util import state

    s = state.cluster_status()
    if args.format != "table":
        print(render(s, args.format, None))
        return 0
    alive = [n for n in s["nodes"] if n["state"] == "ALIVE"]
    print(f"Nodes: {len(alive)} alive, {len(s['nodes']) - len(alive)} dead")
    used: dict = defaultdict(float)
    total: dict = defaultdict(float)
    for n in s["nodes"]:
        print(f"  {n['node_id'][:12]}  {n['state'].lower()}  {n['node_ip']}"
              f"{'  (head)' if n['is_head_node'] else ''}")
        avail = n["resources_available"]
        if n["state"] != "ALIVE" or avail is None:
            continue
        for k, v in n["resources_total"].items():
            total[k] += v
            used[k] += v - avail.get(k, 0)
    print("Resources (used / total):")
    for k in sorted(total):
        if k.startswith("node:") or "_group_" in k:
            continue
        if "memory" in k:
            print(f"  {k}: {used[k] / 2**30:.2f} / {total[k] / 2**30:.2f} GiB")
        else:
            print(f"  {k}: {used[k]:g} / {total[k]:g}")
    from skate.core.node import read_current

    current = read_current() or {}
    if current.get("dashboard_url"):
        print(f"Dashboard: {current['dashboard_url']}")
    if current.get("metrics_export_url"):
        print(f"Metrics (Prometheus): {current['metrics_export_url']}")
    print("Demand:")
    if not (s["demand"] or s["infeasible"] or s["pending_placement_groups"]):
        print("  (no resource demand)")
    for d in s["demand"]:
        print(f"  {_shape(d['shape'])}: {d['count']} pending lease request(s)")
    for d in s["infeasible"]:
        print(f"  {_shape(d['shape'])}: {d['count']} infeasible request(s): no node can "
              f"ever fit them")
    for pg in s["pending_placement_groups"]:
        print(f"  placement group {pg['placement_group_id'][:12]} {pg['name']}: "
              f"{', '.join(_shape(b) for b in pg['bundles'])} pending")
    return 0


def _shape(shape: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shape.items())) + "}"


# -- memory ----------------------------------------------------------------------------------
def _memory(args) -> int:
    from skate.scripts.state_cli import render
    from skate.util import state

    unit = UNITS[args.units]
    status = state.cluster_status()
    if not args.stats_only:
        rows = state.list_objects(limit=1_000_000)
        key = {"pid": lambda r: (r.pid or 0, r.object_id),
               "size": lambda r: (-(r.object_size or 0), r.object_id),
               "reference-type": lambda r: (r.reference_type, r.object_id)}[args.sort_by]
        groups = defaultdict(list)
        for r in rows:
            groups[r.ip + " " + r.node_id[:12] if args.group_by == "node"
                   else r.call_site or "(borrowed)"].append(r)
        for group, rs in sorted(groups.items()):
            print(f"--- {'node' if args.group_by == 'node' else 'call site'} {group} ---")
            table = [{"ip": r.ip, "pid": r.pid, "type": r.type, "call_site": r.call_site,
                      "status": r.task_status,
                      "size": None if r.object_size is None else _size(r.object_size, unit,
                                                                       args.units),
                      "reference_type": r.reference_type, "store": r.store_state,
                      "pinned": r.pinned, "object_ref": r.object_id}
                     for r in sorted(rs, key=key)]
            print(render(table, "table", None))
            size = sum({r.object_id: r.object_size or 0 for r in rs}.values())
            print(f"  {len({r.object_id for r in rs})} object(s), "
                  f"{_size(size, unit, args.units)}\n")
    print("--- Object stores (all nodes) ---")
    capacity = used = spilled = restored = objects = in_memory = 0
    for n in status["nodes"]:
        st = n["object_store"]
        if not st:
            continue
        capacity += st["capacity"]
        used += st["used"]
        spilled += st["spilled_bytes_total"]
        restored += st["restored_bytes_total"]
        objects += st["num_objects"]
        in_memory += st["num_in_memory"]
    pct = 100 * used / capacity if capacity else 0.0
    print(f"  in memory: {_size(used, unit, args.units)} of {_size(capacity, unit, args.units)}"
          f" ({pct:.1f}%), {in_memory} of {objects} object(s)")
    print(f"  spilled (total): {_size(spilled, unit, args.units)}, restored (total): "
          f"{_size(restored, unit, args.units)}, {objects - in_memory} object(s) on disk now")
    return 0


def _size(n: int, unit: int, name: str) -> str:
    return f"{n} B" if unit == 1 else f"{n / unit:.2f} {name}"


# -- logs ------------------------------------------------------------------------------------
def _logs(args) -> int:
    from skate.scripts.state_cli import UsageError
    from skate.util import state

    if args.file is None and args.actor_id is None and args.task_id is None and \
            args.pid is None:
        for node, kinds in state.list_logs(node_id=args.node_id).items():
            print(f"--- node {node} ---")
            for kind, names in sorted(kinds.items()):
                print(f"  {kind}:")
                for name in names:
                    print(f"    {name}")
        return 0
    if args.file is not None and (args.actor_id or args.task_id or args.pid is not None):
        raise UsageError("give a file, or --actor-id/--task-id/--pid, not both")
    lines = state.get_log(filename=args.file, node_id=args.node_id, actor_id=args.actor_id,
                          task_id=args.task_id, pid=args.pid, follow=args.follow,
                          tail=args.tail, suffix="err" if args.err else "out")
    for line in lines:
        print(line, flush=args.follow)
    return 0
