"""The control store's durable state, in SQLite in the session directory.

What must survive a head restart (``skate stop`` then ``skate start --head``
on the same session directory, or the control store alone killed and started
again): the libraries' KV store, every live actor's record (so that it is
adopted where it still runs, or recreated, and keeps its name), and the job
counter. KV and meta writes commit at once. Actor records are written by a
thread of their own, in batches: an actor's creation must not wait for the
disk, and what a crash loses is the last few milliseconds' records (those
actors are then not adopted: their workers are stopped). ``synchronous=NORMAL``
in WAL mode survives the process being killed, which is the failure this is
for (not the machine losing power).
"""

from __future__ import annotations

import pickle
import queue
import sqlite3
import threading


class Persistence:
    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (ns TEXT, key TEXT, value BLOB, "
                             "PRIMARY KEY (ns, key))")
            self._db.execute("CREATE TABLE IF NOT EXISTS actors (id BLOB PRIMARY KEY, rec BLOB)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._actor_writes: queue.SimpleQueue = queue.SimpleQueue()  # (id, rec or None)
        self._writer = threading.Thread(target=self._write_actors, name="persist-actors",
                                        daemon=True)
        self._writer.start()

    def kv_put(self, ns: str, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (ns, key, value))

    def kv_del(self, ns: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))

    def load_kv(self) -> dict:
        with self._lock:
            return {(ns, k): v for ns, k, v in self._db.execute("SELECT ns, key, value FROM kv")}

    def save_actor(self, actor_id: bytes, fields: dict) -> None:
        self._actor_writes.put((actor_id, pickle.dumps(fields)))

    def drop_actor(self, actor_id: bytes) -> None:
        self._actor_writes.put((actor_id, None))

    def _write_actors(self) -> None:
        while True:
            batch = [self._actor_writes.get()]
            while not self._actor_writes.empty():
                batch.append(self._actor_writes.get())
            stop = batch[-1] is _STOP
            with self._lock:
                self._db.execute("BEGIN")
                for item in batch:
                    if item is _STOP:
                        continue
                    actor_id, rec = item
                    if rec is None:
                        self._db.execute("DELETE FROM actors WHERE id = ?", (actor_id,))
                    else:
                        self._db.execute("INSERT OR REPLACE INTO actors VALUES (?, ?)",
                                         (actor_id, rec))
                self._db.execute("COMMIT")
            if stop:
                return

    def load_actors(self) -> list:
        with self._lock:
            return [pickle.loads(r) for (r,) in self._db.execute("SELECT rec FROM actors")]

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._actor_writes.put(_STOP)
        self._writer.join()
        with self._lock:
            self._db.close()


_STOP = object()

