"""The node manager ("raylet"): resources, the worker pool, leases and the object store's books."""
