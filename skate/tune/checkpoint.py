"""Checkpoints: a directory of files a trainable can be restored from.

A checkpoint is only a path. A trainable writes files into a directory and
reports ``Checkpoint.from_directory(dir)``; Tune copies that directory into
the trial's folder (``checkpoint_000003``) so it outlives the temporary
directory, and hands it back on restore through ``tune.get_checkpoint()``.

>>> import os, tempfile
>>> from skate.tune import Checkpoint
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "w.txt"), "w") as f:
...     _ = f.write("42")
>>> ckpt = Checkpoint.from_directory(d)
>>> with ckpt.as_directory() as path:
...     open(os.path.join(path, "w.txt")).read()
'42'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

# Written by Tune beside the user's files: where training stood when saved.
METADATA_FILE = ".tune_metadata.json"


class Checkpoint:
    """A directory holding a trainable's saved state.

    >>> Checkpoint.from_directory("/tmp").path
    '/tmp'
    """

    def __init__(self, path: str):
        self.path = os.fspath(path)

    @classmethod
    def from_directory(cls, path) -> "Checkpoint":
        """Refer to an existing directory (its files are not copied until reported).

        >>> Checkpoint.from_directory("/tmp").path
        '/tmp'
        """
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise ValueError(f"Checkpoint.from_directory({path!r}): no such directory. Write "
                             f"the checkpoint's files into a directory first, then pass it.")
        return cls(os.path.abspath(path))

    @contextlib.contextmanager
    def as_directory(self):
        """Yield a local directory with the checkpoint's files (read them, don't keep the path).

        >>> with Checkpoint.from_directory("/tmp").as_directory() as d:
        ...     d
        '/tmp'
        """
        yield self.path

    def to_directory(self, path: str | None = None) -> str:
        """Copy the files into ``path`` (a new temporary directory when None); return it.

        >>> import tempfile
        >>> dst = Checkpoint.from_directory(tempfile.mkdtemp()).to_directory()
        >>> os.path.isdir(dst)
        True
        """
        import tempfile

        path = path or tempfile.mkdtemp(prefix="skate-ckpt-")
        shutil.copytree(self.path, path, dirs_exist_ok=True)
        return path

    def get_metadata(self) -> dict:
        """Tune's record of the training state at save time (iteration, time)."""
        try:
            with open(os.path.join(self.path, METADATA_FILE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def __fspath__(self):
        return self.path

    def __eq__(self, other):
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self):
        return hash(self.path)

    def __repr__(self):
        return f"Checkpoint(path={self.path!r})"


def persist(source: str, trial_dir: str, index: int, metadata: dict) -> str:
    """Copy a reported checkpoint directory into the trial folder; return the new path.

    The copy goes to a temporary name first and is renamed into place, so a
    crash mid-copy never leaves a half checkpoint that resume would trust.
    """
    dest = os.path.join(trial_dir, f"checkpoint_{index:06d}")
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.abspath(source) != os.path.abspath(dest):
        shutil.copytree(source, tmp)
    else:
        os.rename(source, tmp)
    write_metadata(tmp, metadata)
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return dest


def write_metadata(directory: str, metadata: dict) -> None:
    with open(os.path.join(directory, METADATA_FILE), "w") as f:
        json.dump(metadata, f)
