"""The worker role: every process that runs or submits tasks (drivers too).

* :mod:`ownership` — the objects this process owns or borrows, and their counts;
* :mod:`task_submitter` — leases workers and pushes tasks to them;
* :mod:`actor_submitter` — sends calls to actors, in order, across restarts;
* :mod:`core_worker` — ties them together and answers other processes;
* :mod:`executor` — runs tasks and actor methods in a worker process.
"""
