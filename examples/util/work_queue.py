"""Queue: a bounded work queue shared by producer tasks and a consumer actor.

The queue lives in an actor; its handle pickles, so tasks and actors use it
like ``queue.Queue``. A full queue makes producers wait (back-pressure); the
waiting costs no CPU: it is a coroutine parked in the queue's async actor.

(Not named queue.py: a script of that name would shadow the standard library's
``queue`` for every script in this directory.)

Run: python examples/util/work_queue.py
"""

import skate
from skate.util.queue import Empty, Queue


@skate.remote
def produce(q, name, n):
    for i in range(n):
        q.put((name, i))  # blocks while the queue is full
    return f"{name} produced {n}"


@skate.remote
class Consumer:
    def __init__(self, q):
        self.q = q
        self.seen = []

    def drain(self, n):
        for _ in range(n):
            self.seen.append(self.q.get(timeout=30))
        return len(self.seen)

    def seen_from(self, name):
        return [i for who, i in self.seen if who == name]


if __name__ == "__main__":
    skate.init(num_cpus=2)
    q = Queue(maxsize=5)
    consumer = Consumer.remote(q)
    producers = [produce.remote(q, name, 20) for name in ("a", "b")]
    print("consumed:", skate.get(consumer.drain.remote(40)))
    print(skate.get(producers))
    print("items of 'a' arrive in order:", skate.get(consumer.seen_from.remote("a")))
    q.put_nowait_batch([1, 2, 3])
    print("batch back:", q.get_nowait_batch(3), "| empty:", q.empty())
    try:
        q.get(timeout=0.1)
    except Empty:
        print("get(timeout=0.1) on an empty queue raised Empty")
    q.shutdown()
    skate.shutdown()
