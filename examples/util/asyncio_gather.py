"""asyncio drop-in: an existing asyncio program awaits Skate tasks and async actors.

An ObjectRef is awaitable, so ``asyncio.gather`` fans out tasks and actor
calls alongside the program's own coroutines, and the event loop stays free
while they run.

Run: python examples/util/asyncio_gather.py
"""

import asyncio
import time

import skate


@skate.remote
def fetch(url):
    time.sleep(0.3)  # stands for blocking I/O or CPU work, run in a worker process
    return f"<{len(url)} bytes from {url}>"


@skate.remote
class RateLimiter:
    """An async actor: its calls interleave on one event loop."""

    def __init__(self):
        self.granted = 0

    async def acquire(self, who):
        await asyncio.sleep(0.2)
        self.granted += 1
        return f"{who}: token {self.granted}"


async def heartbeat(stop):
    beats = 0
    while not stop.is_set():
        beats += 1
        await asyncio.sleep(0.05)
    return beats


async def main():
    limiter = RateLimiter.remote()
    stop = asyncio.Event()
    beat = asyncio.ensure_future(heartbeat(stop))
    start = time.perf_counter()
    pages = await asyncio.gather(
        *[fetch.remote(f"https://example.com/{i}") for i in range(4)],
        *[limiter.acquire.remote(f"client{i}") for i in range(4)],
    )
    stop.set()
    elapsed = time.perf_counter() - start
    for page in pages:
        print(page)
    print(f"8 calls in {elapsed:.2f} s; the loop kept beating meanwhile: {await beat} beats")


if __name__ == "__main__":
    skate.init(num_cpus=2)
    asyncio.run(main())
    skate.shutdown()
