"""Every RPC's name, by the role that answers it.

These constants are the only place method names are spelled: the clients
(``control_store/client.py``, ``node_manager/client.py``, ``worker/client.py``,
``object_store/client.py``) send them and each server's handler table maps
them to its ``h_<name>`` method, so an editor jumps from a client call to
the constant and from there to the handler. ``tests/test_boundaries.py``
fails on a string method name anywhere else.
"""

from __future__ import annotations

# -- the control store (control_store/server.py) -------------------------------------------
REGISTER_NODE = "register_node"
GET_NODES = "get_nodes"
CLUSTER_VIEW = "cluster_view"
CLUSTER_RESOURCES = "cluster_resources"
REGISTER_JOB = "register_job"
GET_JOB = "get_job"
LIST_JOBS = "list_jobs"
TASK_EVENTS = "task_events"
LIST_TASKS = "list_tasks"
SUMMARIZE_TASKS = "summarize_tasks"
TASK_TIMELINE = "task_timeline"
REPORT_METRICS = "report_metrics"
METRICS = "metrics"
KV_PUT = "kv_put"
KV_GET = "kv_get"
KV_DEL = "kv_del"
KV_KEYS = "kv_keys"
CREATE_ACTOR = "create_actor"  # to the control store: register and schedule an actor
WORKER_DIED = "worker_died"
ACTOR_EXITED = "actor_exited"
KILL_ACTOR = "kill_actor"
GET_ACTOR_INFO = "get_actor_info"
WAIT_ACTOR = "wait_actor"
GET_NAMED_ACTOR = "get_named_actor"
LIST_NAMED_ACTORS = "list_named_actors"
LIST_ACTORS = "list_actors"
CREATE_PLACEMENT_GROUP = "create_placement_group"
WAIT_PLACEMENT_GROUP = "wait_placement_group"
REMOVE_PLACEMENT_GROUP = "remove_placement_group"
PLACEMENT_GROUP_TABLE = "placement_group_table"
GET_NAMED_PLACEMENT_GROUP = "get_named_placement_group"

# -- every server -------------------------------------------------------------------------
PING = "ping"
WARNING = "warning"  # a message for the user (control store: logged; worker: printed)
SHUTDOWN = "shutdown"

# -- a node manager (node_manager/server.py, object_handlers.py) ----------------------------
REGISTER_WORKER = "register_worker"
REGISTER_DRIVER = "register_driver"
HELLO_CONTROL_STORE = "hello_control_store"
SET_WORKER_NAME = "set_worker_name"
REQUEST_LEASE = "request_lease"
CANCEL_LEASE_REQUEST = "cancel_lease_request"
CANCEL_TAGGED_LEASE = "cancel_tagged_lease"
RETURN_LEASE = "return_lease"
BLOCKED = "blocked"
PREPARE_BUNDLE = "prepare_bundle"
RETURN_BUNDLE = "return_bundle"
KILL_WORKER = "kill_worker"
WORKER_EXIT_CAUSE = "worker_exit_cause"  # why this node killed a worker (memory monitor)
RESOURCES = "resources"
NODE_INFO = "node_info"
SCHEDULER_STATE = "scheduler_state"
FLUSH_LOGS = "flush_logs"
LIST_WORKERS = "list_workers"
LIST_LOGS = "list_logs"
READ_LOG = "read_log"
DEMAND = "demand"
LIST_OBJECTS = "list_objects"  # from every worker and driver of the node (OBJECT_REFS)
STORE_CREATE = "store_create"
STORE_SEAL = "store_seal"
STORE_ABORT = "store_abort"
STORE_GET = "store_get"
STORE_RELEASE_FREE = "store_release_free"
STORE_STATS = "store_stats"
STORE_OBJECTS = "store_objects"

# -- a worker or driver (worker/core_worker.py, worker/executor.py) -------------------------
GET_OBJECT = "get_object"
WAIT_OBJECT = "wait_object"
ADD_BORROWER = "add_borrower"
REMOVE_BORROWERS = "remove_borrowers"
WORKER_OUTPUT = "worker_output"
GENERATOR_ITEM = "generator_item"
CANCEL_OWNED_TASK = "cancel_owned_task"
OBJECT_REFS = "object_refs"  # the references this process holds (for skate memory)
PUSH_TASK = "push_task"
ACTOR_CALL = "actor_call"
START_ACTOR = "start_actor"  # to the actor's worker: construct the actor there
CANCEL_TASK = "cancel_task"
