"""The test service's own event contracts (settings.EXTRA_EVENT_CONTRACTS), declared like the platform's.

`ledger.credited` has a version 2 with the amount as a money object, like order.created's: the tests
run both versions through the real broker to one handler that reads version 2 only (upcast).
"""

from shared.contracts.events import CURRENCY, EventContract, data_schema

ACCOUNT = {"type": "string", "minLength": 1}


def credited_v1_to_v2(data: dict) -> dict:
    return {**data, "amount": {"amount": data["amount"], "currency": "USD"}}


CONTRACTS = (
    EventContract(
        type="ledger.credited",
        version=1,
        producer="shared_tests",
        consumers=("shared_tests",),
        description="An account was credited.",
        schema=data_schema(
            "ledger.credited v1", {"account": ACCOUNT, "amount": {"type": "integer"}}, ["account", "amount"]
        ),
        example={"account": "alice", "amount": 5},
    ),
    EventContract(
        type="ledger.credited",
        version=2,
        producer="shared_tests",
        consumers=("shared_tests",),
        description="An account was credited; the amount is a money object.",
        schema=data_schema(
            "ledger.credited v2",
            {
                "account": ACCOUNT,
                "amount": {
                    "type": "object",
                    "required": ["amount", "currency"],
                    "properties": {"amount": {"type": "integer"}, "currency": CURRENCY},
                },
            },
            ["account", "amount"],
        ),
        example={"account": "alice", "amount": {"amount": 5, "currency": "EUR"}},
        upcaster=credited_v1_to_v2,
    ),
    EventContract(
        type="ledger.poisoned",
        version=1,
        producer="shared_tests",
        consumers=("shared_tests",),
        description="Anything: its handler always fails (the dead-letter tests).",
        schema=data_schema("ledger.poisoned v1", {}, []),
        example={"note": "always fails"},
    ),
    EventContract(
        type="ledger.noted",
        version=1,
        producer="shared_tests",
        consumers=(),
        description="Anything, consumed by nobody: the outbox and saga tests' events about an order.",
        schema=data_schema("ledger.noted v1", {}, []),
        example={"order_id": "5b3c9d2e-1f4a-4c6b-8e7d-9a0b1c2d3e4f"},
    ),
)
