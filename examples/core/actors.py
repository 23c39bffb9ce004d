"""Actors: state in a process of its own; named actors; threaded and async actors.

Run: python examples/core/actors.py
"""

import asyncio

import skate


@skate.remote
class Account:
    def __init__(self, balance):
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount
        return self.balance

    @skate.method(num_returns=2)
    def split(self):
        return self.balance // 2, self.balance - self.balance // 2


@skate.remote
class Fetcher:
    async def fetch(self, i):
        await asyncio.sleep(0.1)  # async methods interleave on one event loop
        return i


@skate.remote
def pay_from_task(account, amount):
    # actor handles can be passed to tasks and other actors
    return skate.get(account.deposit.remote(amount))


if __name__ == "__main__":
    skate.init(num_cpus=2)
    acct = Account.options(name="main-account").remote(100)
    print("deposits in order:", skate.get([acct.deposit.remote(10) for _ in range(3)]))
    print("from a task:", skate.get(pay_from_task.remote(acct, 5)))
    same = skate.get_actor("main-account")
    print("looked up by name, split:", skate.get(same.split.remote()))
    fetcher = Fetcher.remote()
    print("10 async calls (0.1 s each) at once:",
          skate.get([fetcher.fetch.remote(i) for i in range(10)]))
    skate.kill(acct)
    skate.shutdown()
