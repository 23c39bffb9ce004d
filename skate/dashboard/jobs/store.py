"""Submitted jobs' records on disk: ``<session_dir>/jobs.json``, so they outlive a dashboard.

One small JSON file, rewritten whole (to a temporary file, then renamed over
the old one, so a reader or a crash never sees half of it). A job changes
state a handful of times in its life, so rewriting is cheap; the session
directory also outlives the head (``skate stop`` keeps it), so a head
restarted on it shows its old jobs too.

>>> import tempfile
>>> store = JobStore(tempfile.mkdtemp() + "/jobs.json")
>>> store.load()
[]
>>> store.save([{"submission_id": "j1", "status": "SUCCEEDED"}]); store.load()
[{'submission_id': 'j1', 'status': 'SUCCEEDED'}]
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class JobStore:
    def __init__(self, path: str):
        self.path = path

    def load(self) -> list[dict]:
        """The saved records; [] if there are none. An unreadable file is set aside (renamed
        ``.corrupt``) with a warning rather than stopping the dashboard."""
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            log.warning("job records %s are unreadable (%s); starting without them", self.path, e)
            os.replace(self.path, self.path + ".corrupt")
            return []
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            log.warning("job records %s have an unknown format; starting without them",
                        self.path)
            return []
        return [r for r in data.get("jobs", []) if isinstance(r, dict)]

    def save(self, records: list[dict]) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump({"version": FORMAT_VERSION, "jobs": records}, f)
        os.replace(tmp, self.path)
