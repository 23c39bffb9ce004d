"""The shared-memory object store: one arena file per node, mapped by every process.

Pure pieces: :mod:`allocator` (where in the arena an object goes) and
:mod:`layout` (how a serialized object is laid out). The node manager runs
:class:`~skate.core.object_store.store.ObjectStore` (the bookkeeping: create,
seal, pin, free, spill, restore); every process uses
:class:`~skate.core.object_store.client.StoreClient` to write and read.
"""
