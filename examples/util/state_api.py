"""What is running: the state API (Ray's ``ray.util.state``) on a small cluster.

Run: python examples/util/state_api.py
"""

import skate
from skate.util.placement_group import placement_group, remove_placement_group
from skate.util.state import (
    list_actors,
    list_jobs,
    list_nodes,
    list_placement_groups,
    summarize_actors,
)


@skate.remote
class Worker:
    def ready(self):
        return True


def main() -> None:
    skate.init(num_cpus=2)
    try:
        workers = [Worker.options(name=f"worker-{i}").remote() for i in range(2)]
        skate.get([w.ready.remote() for w in workers])
        skate.kill(workers[1])
        pg = placement_group([{"CPU": 0.5}], name="example-group")
        pg.wait(30)

        for a in list_actors():
            print(f"actor {a.name:9} {a.state:5} pid={a.pid} restarts={a.num_restarts}")
        print("alive:", [a.name for a in list_actors(filters=[("state", "=", "ALIVE")])])
        print("by class:", summarize_actors()["cluster"]["summary"])
        for n in list_nodes():
            print(f"node {n.node_id[:12]} {n.state} head={n.is_head_node} "
                  f"CPU={n.resources_total.get('CPU')}")
        for g in list_placement_groups():
            print(f"group {g.name} {g.state} {g.strategy} bundles={len(g.bundles)}")
        for j in list_jobs():
            print(f"job {j.job_id} {j.status} namespace={j.ray_namespace}")
        remove_placement_group(pg)
    finally:
        skate.shutdown()


if __name__ == "__main__":
    main()
