"""A new version of an event rolled out for real: `order.created` version 2 (money as `{amount, currency}`)
published beside version 1 through the e2e instance's broker, both read by inventory (which upcasts
version 1), and both orders confirmed.

The version 1 publisher is orders' web process as `up` started it; the version 2 publisher is a second
orders process started the way a rolling deploy starts the new release: the same code with
`EVENT_VERSIONS=order.created=2` (shared.contracts.published_version), here `manage.py shell`.
"""

from __future__ import annotations

import json

import pytest

from tests.shop import SHIPPING, Shop

PLACE_WITH_NEW_RELEASE = """
import json, uuid
from orders import services
order = services.order_create(
    user_id=uuid.UUID({user_id!r}), customer_email={email!r},
    lines=[services.LineRequest(product_id=uuid.UUID({product_id!r}), quantity=2)],
    payment_token="tok_visa", shipping_address={shipping!r},
)
print(json.dumps({{"order_id": str(order.id)}}))
"""

PUBLISHED_VERSIONS = """
import json
from shared.messaging.models import OutboxEvent
rows = OutboxEvent.objects.filter(event_type="order.created", order_id__in={order_ids!r})
print(json.dumps({{str(row.order_id): [row.version, row.envelope["data"]["total"]] for row in rows}}))
"""


@pytest.fixture
def shop(platform) -> Shop:
    return Shop(platform)


def _manage_orders(platform, code: str, **env) -> dict:
    answer = platform.manage_all("manage", "orders", "shell", "-c", code, timeout=120, **env)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_version_1_and_version_2_of_order_created_run_side_by_side(shop, platform):
    customer = shop.new_customer()
    me = shop.call("GET", "identity", "/api/v1/auth/me/", customer).json()
    product_id = shop.new_product(stock=10, price="12.50")

    old = shop.place_order(customer, [(product_id, 1)])
    assert old.status_code == 202, old.text
    new = _manage_orders(
        platform,
        PLACE_WITH_NEW_RELEASE.format(
            user_id=me["id"], email=me["email"], product_id=product_id, shipping=SHIPPING
        ),
        EVENT_VERSIONS="order.created=2",
    )
    orders = {old.json()["id"]: 1, new["order_id"]: 2}

    finished = {order_id: shop.wait_for_terminal(customer, order_id) for order_id in orders}
    assert {order["status"] for order in finished.values()} == {"confirmed"}, finished
    published = _manage_orders(platform, PUBLISHED_VERSIONS.format(order_ids=list(orders)))
    assert published == {
        old.json()["id"]: [1, "12.50"],
        new["order_id"]: [2, {"amount": "25.00", "currency": "USD"}],
    }
    stock = shop.stock(product_id)
    assert (stock["on_hand"], stock["reserved"]) == (7, 0)
