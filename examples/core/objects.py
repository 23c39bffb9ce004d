"""The object store: large values in shared memory, zero-copy reads, spilling to disk.

Run: python examples/core/objects.py
"""

import numpy as np

import skate


@skate.remote
def column_means(matrix):
    # matrix is a read-only view of the shared-memory copy: no copy was made
    return matrix.mean(axis=0)


if __name__ == "__main__":
    # a small store, so that the loop below must spill to disk
    skate.init(num_cpus=2, object_store_memory=200 * 1024 * 1024)
    matrix = np.random.default_rng(0).random((2_000, 1_000))  # 16 MB
    ref = skate.put(matrix)
    print("means match:", np.allclose(skate.get(column_means.remote(ref)), matrix.mean(axis=0)))

    refs = [skate.put(np.full(10_000_000, i, dtype=np.float64)) for i in range(5)]  # 5 x 80 MB
    print("all 5 x 80 MB objects back after spilling:", [int(skate.get(r)[0]) for r in refs])

    # refs nested in containers stay refs; the value lives while anyone holds one
    outer = skate.put({"inner": skate.put("kept alive by the outer object")})
    print(skate.get(skate.get(outer)["inner"]))
    skate.shutdown()
