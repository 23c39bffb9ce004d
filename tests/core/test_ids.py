"""Ids (skate/core/ids.py): unique per process, and after a fork."""

import os

import pytest

from skate.core import ids

pytestmark = pytest.mark.skate_only  # Skate's id scheme


def test_ids_are_unique_in_a_process():
    made = {ids.task_id() for _ in range(10_000)}
    assert len(made) == 10_000
    t = ids.task_id()
    assert ids.object_id(t, 1) != ids.object_id(t, 2) and ids.object_id(t, 1)[:len(t)] == t


def test_a_forked_child_does_not_repeat_its_parents_ids():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the ids it makes next, to the parent
        try:
            os.close(r)
            os.write(w, b"".join(ids.task_id() for _ in range(100)))
        finally:
            os._exit(0)
    os.close(w)
    parent = [ids.task_id() for _ in range(100)]
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    assert os.waitpid(pid, 0)[1] == 0
    n = len(parent[0])
    child = [data[i:i + n] for i in range(0, len(data), n)]
    assert len(child) == 100 and not set(child) & set(parent)
