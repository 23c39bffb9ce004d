"""Work survives workers killed at random: a thread kill -9s a worker every 0.2 s
while tasks with unlimited retries and a restartable actor keep going.

    python examples/core/survive_kills.py
"""

import random
import threading
import time

import psutil

import skate


def kill_workers(stop: threading.Event, killed: list) -> None:
    me = psutil.Process()
    while not stop.wait(0.2):
        workers = []
        for p in me.children(recursive=True):
            try:
                if "skate.core.worker" in " ".join(p.cmdline()):
                    workers.append(p)
            except psutil.Error:
                pass
        if workers:
            try:
                random.choice(workers).kill()
                killed.append(1)
            except psutil.Error:
                pass


@skate.remote(max_retries=-1)
def square(i):
    time.sleep(0.002)
    return i * i


@skate.remote(max_restarts=-1, max_task_retries=-1)
class Echo:
    def echo(self, i):
        return i


if __name__ == "__main__":
    skate.init(num_cpus=2)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_workers, args=(stop, killed), daemon=True)
    killer.start()
    squares = skate.get([square.remote(i) for i in range(1000)], timeout=120)
    echo = Echo.remote()
    echoes = skate.get([echo.echo.remote(i) for i in range(200)], timeout=120)
    stop.set()
    killer.join()
    assert squares == [i * i for i in range(1000)] and echoes == list(range(200))
    print(f"1000 tasks and 200 actor calls all correct, {len(killed)} workers killed")
    skate.shutdown()
