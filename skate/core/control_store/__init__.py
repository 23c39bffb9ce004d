"""The control store ("GCS"): nodes, jobs, actors, named actors and a small KV store."""
