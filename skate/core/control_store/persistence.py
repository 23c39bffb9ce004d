"""The control store's durable state, in SQLite in the session directory.

What must survive a head restart (``skate stop`` then ``skate start --head``
on the same session directory): the libraries' KV store, detached actors'
records (so they are recreated and keep their names), and the job counter.
Writes go through at once; they are rare (a KV put, a detached actor's
creation or death), so a synchronous commit each time costs little.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading


class Persistence:
    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (ns TEXT, key TEXT, value BLOB, "
                             "PRIMARY KEY (ns, key))")
            self._db.execute("CREATE TABLE IF NOT EXISTS actors (id BLOB PRIMARY KEY, rec BLOB)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

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
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO actors VALUES (?, ?)",
                             (actor_id, pickle.dumps(fields)))

    def drop_actor(self, actor_id: bytes) -> None:
        with self._lock:
            self._db.execute("DELETE FROM actors WHERE id = ?", (actor_id,))

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
        with self._lock:
            self._db.close()
