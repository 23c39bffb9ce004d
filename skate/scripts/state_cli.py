"""``skate list`` / ``skate get`` / ``skate summary``: the state API from the shell.

    skate list tasks|actors|nodes|placement-groups|jobs [--filter "state=ALIVE"] [--limit N]
                                                        [--detail] [--format table|json|yaml]
    skate get tasks|actors|nodes|placement-groups|jobs ID [--format ...]
    skate summary tasks|actors [--format ...]
    skate timeline [--output FILE]

They ask the cluster this machine runs (``skate start --head``) through
``skate.util.state``; user mistakes print one line and exit 2, a missing
cluster exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from skate.scripts import cluster_cli

#: kind -> (list function name, get function name or the id field to filter on, the columns
#: of the table)
KINDS = {
    "tasks": ("list_tasks", "get_task",
              ("task_id", "attempt_number", "name", "state", "type", "node_id", "worker_pid",
               "error_type")),
    "actors": ("list_actors", "get_actor",
               ("actor_id", "class_name", "state", "name", "node_id", "pid", "num_restarts")),
    "nodes": ("list_nodes", "get_node",
              ("node_id", "node_ip", "is_head_node", "state", "resources_total")),
    "placement-groups": ("list_placement_groups", "get_placement_group",
                         ("placement_group_id", "name", "state", "strategy")),
    "jobs": ("list_jobs", "get_job", ("job_id", "status", "ray_namespace", "start_time")),
    "workers": ("list_workers", "worker_id",
                ("worker_id", "worker_type", "state", "pid", "node_id", "actor_class_name",
                 "exit_code")),
    "objects": ("list_objects", "object_id",
                ("object_id", "object_size", "reference_type", "call_site", "type", "pid",
                 "store_state")),
}
FORMATS = ("table", "json", "yaml")
#: the ``skate`` subcommands this module carries out
COMMANDS = ("list", "get", "summary", "timeline", *cluster_cli.COMMANDS)


class UsageError(Exception):
    """A mistake in the command line: one line, exit 2."""


def add_parsers(sub) -> None:
    """Add the commands of ``COMMANDS`` to the ``skate`` command's subparsers."""
    cluster_cli.add_parsers(sub)
    ls = sub.add_parser("list", help="list tasks, actors, objects, workers, nodes, placement "
                                     "groups or jobs")
    ls.add_argument("kind", choices=sorted(KINDS))
    ls.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                    help='keep records where KEY=VALUE (or KEY!=VALUE); repeatable')
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    ls.add_argument("--detail", action="store_true", help="every field, not the main ones")
    ls.add_argument("--format", choices=FORMATS, default="table")
    get = sub.add_parser("get", help="one task, actor, object, worker, node, placement group "
                                     "or job by id")
    get.add_argument("kind", choices=sorted(KINDS))
    get.add_argument("id")
    get.add_argument("--format", choices=FORMATS, default="yaml")
    summary = sub.add_parser("summary", help="tasks, actors or objects counted by name and "
                                             "state")
    summary.add_argument("kind", choices=["tasks", "actors", "objects"])
    summary.add_argument("--format", choices=FORMATS, default="table")
    tl = sub.add_parser("timeline", help="the tasks' runs as a Chrome trace (Perfetto)")
    tl.add_argument("--output", default=None,
                    help="file to write (default: skate-timeline-<time>.json here)")


def run(args) -> int:
    """Carry out a parsed ``list`` / ``get`` / ``summary`` command; the exit status."""
    from skate.util import state

    if args.command in cluster_cli.COMMANDS:
        return cluster_cli.run(args)
    try:
        if args.command == "list":
            name, _, columns = KINDS[args.kind]
            records = getattr(state, name)(filters=[parse_filter(f) for f in args.filter],
                                           limit=args.limit)
            rows = [dataclasses.asdict(r) for r in records]
            print(render(rows, args.format, None if args.detail else columns))
        elif args.command == "get":
            list_name, get, _ = KINDS[args.kind]
            if get.startswith("get_"):
                found = [r for r in [getattr(state, get)(args.id)] if r is not None]
            else:  # every row of that id (an object has one per process referring to it)
                found = getattr(state, list_name)(filters=[(get, "=", args.id)], limit=10_000)
            if not found:
                print(f"No {args.kind[:-1].replace('-', ' ')} with id {args.id}.",
                      file=sys.stderr)
                return 1
            rows = [dataclasses.asdict(r) for r in found]
            print(render(rows[0] if len(rows) == 1 else rows, args.format, None))
        elif args.command == "timeline":
            import time

            path = args.output or time.strftime("skate-timeline-%Y%m%d-%H%M%S.json")
            state.timeline(path)
            print(f"Wrote the timeline to {path}: open it in https://ui.perfetto.dev or "
                  f"chrome://tracing.")
        elif args.kind == "objects":
            summary = state.summarize_objects()
            if args.format == "table":
                rows = [{"call_site": site, "objects": s["total_objects"],
                         "size_mb": round(s["total_size_mb"], 2),
                         "workers": s["total_num_workers"], "nodes": s["total_num_nodes"],
                         **s["ref_type_counts"]}
                        for site, s in summary["cluster"]["summary"].items()]
                print(render(rows, "table", None))
                c = summary["cluster"]
                print(f"total objects: {c['total_objects']} ({c['total_size_mb']:.2f} MiB)")
            else:
                print(render(summary, args.format, None))
        else:
            tasks = args.kind == "tasks"
            summary = state.summarize_tasks() if tasks else state.summarize_actors()
            if args.format == "table":
                key = "func_or_class_name" if tasks else "class_name"
                rows = [{key: c, **s["state_counts"]}
                        for c, s in summary["cluster"]["summary"].items()]
                print(render(rows, "table", None))
                total = summary["cluster"]["total_tasks" if tasks else "total_actors"]
                print(f"total {args.kind}: {total}")
                dropped = sum(summary["cluster"].get("dropped", {}).values())
                if dropped:
                    print(f"({dropped} older finished tasks were dropped from the history)")
            else:
                print(render(summary, args.format, None))
    except (UsageError, ValueError) as e:
        print(f"skate {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # no cluster, or a file the timeline cannot be written to
        print(f"skate {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


def parse_filter(text: str) -> tuple:
    """``"state=ALIVE"`` -> ``("state", "=", "ALIVE")``; ``"k!=v"`` -> ``("k", "!=", "v")``."""
    for predicate in ("!=", "="):
        key, sep, value = text.partition(predicate)
        if sep and key.strip():
            return key.strip(), predicate, value.strip()
    raise UsageError(f"--filter takes KEY=VALUE or KEY!=VALUE, got {text!r}.")


def render(data, fmt: str, columns) -> str:
    """Records (a list of dicts, or one dict) as a table, JSON or YAML."""
    if fmt == "json":
        return json.dumps(data, indent=2, default=str)
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise UsageError("--format yaml needs PyYAML (pip install pyyaml); use "
                             "--format json instead.") from None
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()
    rows = data if isinstance(data, list) else [data]
    if not rows:
        return "(none)"
    keys = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.upper().ljust(w) for k, w in zip(keys, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def main(argv=None) -> int:
    """Run one of these commands alone (``python -m skate.scripts.state_cli list actors``)."""
    p = argparse.ArgumentParser(prog="skate")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
