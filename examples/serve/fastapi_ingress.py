"""@serve.ingress: a FastAPI app whose routes are methods of a deployment.

Run: python examples/serve/fastapi_ingress.py   (needs fastapi)
"""

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

import skate
from skate import serve

app = FastAPI()


class Order(BaseModel):
    item: str
    quantity: int


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class Shop:
    def __init__(self, prices: dict):
        self.prices = prices

    @app.get("/price/{item}")
    def price(self, item: str):
        return {"item": item, "price": self.prices[item]}

    @app.post("/order")
    def order(self, order: Order):
        return {"total": self.prices[order.item] * order.quantity}


def main():
    skate.init()
    serve.run(Shop.bind({"pen": 1.5, "book": 12.0}), route_prefix="/shop")
    base = "http://127.0.0.1:8000/shop"
    print(httpx.get(f"{base}/price/book").json())
    print(httpx.post(f"{base}/order", json={"item": "pen", "quantity": 4}).json())
    print("bad request ->", httpx.post(f"{base}/order", json={"item": "pen"}).status_code)
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()
