"""A live log tail for an HTTP client: ``get_log(follow=True)`` on a thread of its own,
its lines handed to the event loop, everything closed when the client goes.

``skate.state.get_log(follow=True)`` is a blocking generator: it holds a
connection to the log's node and, while the file is quiet, sleeps and polls
inside itself without yielding. So each stream runs it on a dedicated daemon
thread (not the shared thread pool, which a few quiet tails would exhaust),
which puts the lines on a bounded asyncio queue: a slow client slows the
reader down instead of growing the queue.

Stopping is the hard part. When the client disconnects, ``stop()`` sets a
flag the thread checks between lines -- but a quiet generator never returns
to the thread to see it, and a generator cannot be closed from another
thread while it runs. So ``stop()`` raises ``_Stopped`` inside the thread
(``PyThreadState_SetAsyncExc``) when, and only when, the thread is inside the
generator: the exception surfaces at the generator's next bytecode (within
one poll interval, 0.5 s), unwinds it -- its ``with`` closes the node
connection -- and the thread ends. ``closed`` is set once the generator is
closed, whichever way. At most ``MAX_STREAMS`` run at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading

log = logging.getLogger(__name__)

MAX_STREAMS = 16
QUEUE_LINES = 1000  # lines buffered per stream before the reader waits for the client
_active = threading.BoundedSemaphore(MAX_STREAMS)


class _Stopped(BaseException):
    """Raised inside a follower's thread to unwind the generator it is blocked in (a
    BaseException, so no ``except Exception`` on the way swallows it)."""


class TooManyStreams(RuntimeError):
    pass


class LogFollower:
    """The lines of ``open_lines()`` (a generator factory), delivered to ``chunks()``."""

    _END = object()

    def __init__(self, open_lines, loop: asyncio.AbstractEventLoop | None = None):
        self._open_lines = open_lines
        self._loop = loop or asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_LINES)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inside = False  # the thread is inside the generator (guarded by _lock)
        self._interrupted = False  # _Stopped was raised in the thread once (guarded by _lock)
        self.closed = threading.Event()  # the generator is closed (its connections too)
        self.error: Exception | None = None  # why the lines ended early, if they did
        self._thread = threading.Thread(target=self._run, name="skate-dashboard-log",
                                        daemon=True)

    def start(self) -> "LogFollower":
        """Start reading; TooManyStreams if ``MAX_STREAMS`` are open already."""
        if not _active.acquire(blocking=False):
            raise TooManyStreams(f"{MAX_STREAMS} log streams are open already: close one "
                                 f"(a tab that follows a log) and try again.")
        self._thread.start()
        return self

    async def chunks(self, max_lines: int = 500):
        """Text chunks (one or more whole lines each) until the log ends or ``stop()``."""
        while True:
            item = await self._queue.get()
            lines = []
            while item is not self._END:
                lines.append(item)
                if len(lines) >= max_lines or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if lines:
                yield "".join(line + "\n" for line in lines)
            if item is self._END:
                return

    def stop(self) -> None:
        """End the stream: the thread leaves the generator and closes it (within one poll
        interval when it is waiting for lines)."""
        self._stop.set()
        with self._lock:
            if self._inside and not self._interrupted and self._thread.ident is not None:
                self._interrupted = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread.ident), ctypes.py_object(_Stopped))

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        lines = None
        try:
            lines = self._open_lines()
            while not self._stop.is_set():
                with self._lock:
                    self._inside = True
                try:
                    line = next(lines, self._END)
                finally:
                    with self._lock:
                        self._inside = False
                if line is self._END or not self._put(line):
                    break
        except _Stopped:
            pass
        except Exception as e:  # noqa: BLE001 - the client is told, the dashboard goes on
            self.error = e
            if not self._stop.is_set():
                self._put(f"[the log stream ended: {e}]")
        finally:
            if lines is not None:
                lines.close()  # its node connection with it
            self.closed.set()
            _active.release()
            self._put(self._END, wait=not self._stop.is_set())

    def _put(self, item, wait: bool = True) -> bool:
        """Queue ``item`` for the client; False once the stream is stopping."""
        put = self._queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:  # the event loop is closed: the dashboard is exiting
            put.close()
            return False
        while True:
            try:
                future.result(timeout=0.5 if wait else 0)
                return True
            except TimeoutError:
                if not wait or self._stop.is_set():
                    future.cancel()
                    return False
            except Exception:  # noqa: BLE001 - cancelled: the loop is shutting down
                return False
