"""The texts of the e-mails: short plain text with what the customer needs (order id, total, reason).

Each composer takes the event's `data` (payloads in docs/saga.md) and returns the subject and body.
Required fields are read with `[]`: an event without them is malformed and must fail loudly (it ends
in the dead-letter queue for an operator) rather than send a half-empty e-mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notifications.models import Notification

Kind = Notification.Kind

SIGNATURE = "\n\n-- \nThe order platform team"

CANCELLATION_REASONS = {
    "customer_cancelled": "you cancelled it",
    "staff_cancelled": "our customer service cancelled it",
    "payment_declined": "the payment was declined",
    "payment_unavailable": "the payment could not be processed",
    "payment_timeout": "the payment did not complete in time",
}

REJECTION_REASONS = {
    "out_of_stock": "an item in it is out of stock",
    "unknown_product": "an item in it is no longer sold",
}


@dataclass(frozen=True)
class EmailText:
    subject: str
    body: str


def _money(amount, currency) -> str:
    return f"{amount} {currency or 'USD'}"


def _lines(lines: list | None, currency: str | None) -> str:
    rendered = [
        f"  {line.get('quantity')} x {line.get('name') or line.get('product_id')}"
        + (f" at {_money(line['unit_price'], currency)}" if line.get("unit_price") else "")
        for line in lines or []
    ]
    return "\n".join(rendered)


def _reason(reasons: dict[str, str], reason: str | None) -> str:
    return reasons.get(reason or "", (reason or "unknown").replace("_", " "))


def welcome(data: dict) -> EmailText:
    name = data.get("full_name") or data["email"]
    return EmailText(
        subject="Welcome to the order platform",
        body=(
            f"Hello {name},\n\n"
            f"your account {data['email']} is ready. You can now browse the catalog and place orders."
            f"{SIGNATURE}"
        ),
    )


def order_confirmed(data: dict) -> EmailText:
    order_id, currency = data["order_id"], data.get("currency")
    items = _lines(data.get("lines"), currency)
    return EmailText(
        subject=f"Order {order_id} confirmed",
        body=(
            f"Thank you for your order.\n\n"
            f"Order: {order_id}\n"
            f"Total: {_money(data['total'], currency)}\n"
            + (f"Items:\n{items}\n" if items else "")
            + f"\nYour payment was received and the items are reserved for you.{SIGNATURE}"
        ),
    )


def order_cancelled(data: dict) -> EmailText:
    order_id, currency = data["order_id"], data.get("currency")
    reason = _reason(CANCELLATION_REASONS, data.get("reason"))
    refund_note = (
        "\nThe payment will be refunded; you will receive a separate e-mail when it is."
        if data.get("previous_status") == "confirmed"
        else "\nYou have not been charged."
    )
    return EmailText(
        subject=f"Order {order_id} cancelled",
        body=(
            f"Your order {order_id} was cancelled because {reason}.\n\n"
            f"Order total: {_money(data['total'], currency)}\n"
            f"{refund_note}{SIGNATURE}"
        ),
    )


def order_rejected(data: dict) -> EmailText:
    order_id = data["order_id"]
    reason = _reason(REJECTION_REASONS, data.get("reason"))
    return EmailText(
        subject=f"Order {order_id} could not be accepted",
        body=(
            f"We are sorry: your order {order_id} could not be accepted because {reason}.\n\n"
            f"You have not been charged.{SIGNATURE}"
        ),
    )


def payment_refunded(data: dict) -> EmailText:
    order_id, amount = data["order_id"], _money(data["amount"], data.get("currency"))
    return EmailText(
        subject=f"Refund of {amount} for order {order_id}",
        body=(
            f"We have refunded {amount} for your order {order_id}.\n\n"
            f"Depending on your bank it can take a few days to appear on your statement.{SIGNATURE}"
        ),
    )


COMPOSERS: dict[str, Callable[[dict], EmailText]] = {
    Kind.WELCOME: welcome,
    Kind.ORDER_CONFIRMED: order_confirmed,
    Kind.ORDER_CANCELLED: order_cancelled,
    Kind.ORDER_REJECTED: order_rejected,
    Kind.PAYMENT_REFUNDED: payment_refunded,
}


def compose(kind: str, data: dict) -> EmailText:
    return COMPOSERS[kind](data)


def recipient(kind: str, data: dict) -> str:
    """user.registered names the address `email`; the order and payment events `customer_email`."""
    return (data.get("email") if kind == Kind.WELCOME else data.get("customer_email")) or ""
