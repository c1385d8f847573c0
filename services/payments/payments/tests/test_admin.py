"""payments' admin: view-only payment pages with links into the other services' admins, and the refund
action: a confirmation page first, then the refund is requested and runs as the worker's task."""

from __future__ import annotations

import pytest

from payments.models import Payment, PaymentEvent
from payments.tests.helpers import captured_payment, create_payment, events
from shared.admin_ui.testing import admin_shadow_login

pytestmark = pytest.mark.django_db

PAYMENTS_ADMIN = "/admin/payments/payments/payment/"
LEDGER_OF_A_CAPTURE = ("requested", "charge_attempted", "charge_succeeded")


@pytest.fixture
def operator_id(client) -> str:
    return admin_shadow_login(client)


def refund(client, *payments, confirm: bool = False, **kwargs):
    data = {"action": "refund", "_selected_action": [str(payment.id) for payment in payments]}
    if confirm:
        data["post"] = "yes"
    return client.post(PAYMENTS_ADMIN, data, **kwargs)


def test_a_payment_page_is_a_view_linking_order_customer_and_reservation(client, operator_id):
    payment = captured_payment()

    page = client.get(f"{PAYMENTS_ADMIN}{payment.id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert "tok_visa" not in html
    assert f'href="/admin/orders/orders/order/{payment.order_id}/change/"' in html
    assert f'href="/admin/identity/identity/user/{payment.user_id}/change/"' in html
    assert f'href="/admin/inventory/inventory/reservation/{payment.reservation_id}/change/"' in html
    assert (
        f'href="/admin/orders/orders/order/{payment.order_id}/change/"'
        in client.get(PAYMENTS_ADMIN).content.decode()
    )


def test_refund_asks_for_confirmation_listing_what_will_be_refunded(client, operator_id, tasks):
    captured, pending = captured_payment(), create_payment()

    page = refund(client, captured, pending)
    html = page.content.decode()

    assert page.status_code == 200
    assert page.templates[0].name == "admin_ui/confirm_action.html"
    assert f"12.50 USD for order {captured.order_id}" in html
    assert str(pending.order_id) not in html
    assert "1 payments skipped: only captured ones can be refunded." in html
    assert 'name="post" value="yes"' in html
    assert f'href="{PAYMENTS_ADMIN}"' in html  # Cancel: back to the list, nothing done
    captured.refresh_from_db()
    assert (captured.status, captured.refund_requested) == (Payment.Status.CAPTURED, False)
    assert tasks.names() == []


def test_confirmed_refund_is_requested_by_the_operator_and_done_by_the_task(
    client, operator_id, tasks, committed, provider
):
    captured, pending = captured_payment(), create_payment()

    with committed():
        response = refund(client, captured, pending, confirm=True, follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert messages[0].startswith(
        "Refund requested for 1 payments. Each one shows as refunded when the provider"
    )
    assert messages[1:] == ["1 payments skipped: only captured ones can be refunded."]
    captured.refresh_from_db()
    # What the message says: requested, recorded with who asked, not refunded yet.
    assert (captured.status, captured.refund_requested) == (Payment.Status.CAPTURED, True)
    assert str(captured.refund_requested_by) == operator_id
    assert tasks.names() == [("payments.payment_refund", (str(captured.id),))]

    tasks.run_all()  # what payments' worker does right after

    captured.refresh_from_db()
    assert captured.status == Payment.Status.REFUNDED
    assert provider.ledger()["refunds"] == 1
    assert [event["payment_id"] for event in events("payment.refunded")] == [str(captured.id)]
    assert Payment.objects.get(pk=pending.pk).status == Payment.Status.PENDING
    page = client.get(f"{PAYMENTS_ADMIN}{captured.id}/change/").content.decode()
    assert f'href="/admin/identity/identity/user/{operator_id}/change/"' in page


def test_a_refund_already_requested_is_not_requested_again(client, operator_id, tasks, committed):
    captured = captured_payment()
    with committed():
        refund(client, captured, confirm=True)
    tasks.queued.clear()

    page = refund(client, captured)
    with committed():
        response = refund(client, captured, confirm=True, follow=True)

    assert "None of the selected payments can be refunded now." in page.content.decode()
    assert 'value="Yes, refund them"' not in page.content.decode()
    assert [str(message) for message in response.context["messages"]] == [
        "1 payments already have a refund requested; they are waiting for the provider."
    ]
    assert tasks.names() == []


def test_the_payment_page_shows_its_ledger_read_only_without_the_card_token(client, operator_id):
    payment = captured_payment()

    html = client.get(f"{PAYMENTS_ADMIN}{payment.id}/change/").content.decode()

    assert "Ledger: the history of this payment, oldest first" in html
    positions = [html.index(f"<p>{event_type}</p>") for event_type in LEDGER_OF_A_CAPTURE]
    assert positions == sorted(positions)  # oldest first
    assert payment.provider_charge_id in html
    assert "tok_visa" not in html
    assert "&quot;payment_token&quot;: &quot;(hidden)&quot;" in html
    assert 'name="ledger_events-0-type"' not in html  # shown, not a form field
    assert "Add another ledger event" not in html


def test_the_ledger_cannot_be_edited_through_the_admin(client, operator_id):
    payment = captured_payment()
    event = PaymentEvent.objects.get(payment_id=payment.id, version=1)

    response = client.post(
        f"{PAYMENTS_ADMIN}{payment.id}/change/",
        {
            "ledger_events-TOTAL_FORMS": "1",
            "ledger_events-INITIAL_FORMS": "1",
            "ledger_events-0-id": str(event.id),
            "ledger_events-0-type": "rewritten",
            "ledger_events-0-DELETE": "on",
        },
    )

    assert response.status_code == 403
    assert list(PaymentEvent.objects.filter(payment_id=payment.id).values_list("type", flat=True)) == list(
        LEDGER_OF_A_CAPTURE
    )
