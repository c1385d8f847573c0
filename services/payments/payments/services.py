"""payments' writes: the payment's life from `inventory.reserved` to captured, failed, refunded or voided.

The rules that keep money right (docs/saga.md, design rules 4-7):

- Every change to a payment is an event appended to its ledger stream (payments.event_store), and the
  Payment row, the stream's projection (payments.ledger), is updated in the same transaction
  (`_record`). Tasks carry only the payment's id, and every decision is taken from the row, under its
  lock: the lock serialises writers, the stream's expected version catches any that slips past it.
  Work that is still owed (a charge attempt, a refund) has a `next_attempt_at`
  that the beat sweep honours, so a lost task or a crashed worker loses nothing.
- The provider is never called inside a database transaction: a charge is (a) a short transaction
  that checks and claims the row, (b) the HTTP call, (c) a new transaction that records the answer,
  unless the saga moved on meanwhile (then captured money is refunded at once).
- Every provider call carries an idempotency key derived from the order (`order-<id>-charge`,
  `order-<id>-refund`), so no retry, duplicate task or duplicate event can charge or refund twice.
- A charge whose answer never came back is "in doubt". When the saga gives up on such a payment
  (deadline, expiry, cancellation), the provider is asked what happened under the charge key, and
  anything it took is refunded.

Over 500 lines on purpose: these rules apply to all of it (claims, locks, idempotency keys), and read
best in the one module that is the service's only writer (the platform's convention).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments import clients, event_store, ledger, metrics, selectors
from payments.models import Payment
from shared.http import DownstreamUnavailable
from shared.messaging.events import publish_event, run_task_after_commit
from shared.observability.metrics import count_after_commit
from shared.web.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

Status = Payment.Status
Reason = Payment.FailureReason

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
REFUND_RETRY_SECONDS = MAX_BACKOFF_SECONDS
# A claimed attempt owns the row this much longer than its worst case before the sweep takes over.
LEASE_MARGIN_SECONDS = 3.0

# The tasks this module queues, by their contract names (payments.tasks declares them with these names):
# sent by name, so that this module does not import the tasks module, which imports it.
CHARGE_TASK = "payments.payment_charge"
REFUND_TASK = "payments.payment_refund"

TIMEOUT_MESSAGE = "The stock reservation expired before the payment was taken."
UNAVAILABLE_MESSAGE = "The payment provider could not be reached before the payment deadline."


# Creating, cancelling, expiring (called by event handlers, inside their inbox transaction)


@transaction.atomic
def payment_create_for_reservation(
    *,
    order_id: str,
    reservation_id: str,
    user_id: str,
    customer_email: str,
    amount: Decimal,
    currency: str,
    payment_token: str,
    expires_at: datetime | None,
) -> Payment:
    """`inventory.reserved`: a pending payment, charged by a task queued after commit.

    The deadline for an unavailable provider is `min(now + PAYMENT_DEADLINE_SECONDS, expires_at)`.
    A duplicate or late event finds the existing row (a payment, or the tombstone of an order
    cancelled first) and changes nothing.
    """
    existing = Payment.objects.filter(order_id=order_id).first()
    if existing is not None:
        logger.info("payment already exists; nothing to do", extra=_log(existing))
        return existing
    now = timezone.now()
    deadline = now + timedelta(seconds=settings.PAYMENT_DEADLINE_SECONDS)
    if expires_at is not None:
        deadline = min(deadline, expires_at)
    try:
        with transaction.atomic():
            payment = _start_stream(
                ledger.REQUESTED,
                {
                    "order_id": str(order_id),
                    "reservation_id": reservation_id or "",
                    "user_id": str(user_id),
                    "customer_email": customer_email or "",
                    "amount": ledger.encode_amount(amount),
                    "currency": currency,
                    "payment_token": payment_token or "",
                    "deadline_at": ledger.encode_time(deadline),
                    "expires_at": ledger.encode_time(expires_at),
                    # The task queued below owns the first attempt; the sweep steps in if it is lost.
                    "next_attempt_at": ledger.encode_time(_lease_until(now)),
                },
                at=now,
            )
    except IntegrityError:  # a concurrent order.cancelled left its tombstone first
        return Payment.objects.get(order_id=order_id)
    _queue_charge(payment)
    logger.info("payment created", extra=_log(payment))
    return payment


@transaction.atomic
def payment_expire_reservation(*, order_id: str) -> Payment | None:
    """`inventory.reservation_expired`: a pending payment is voided, never charged.

    Announces `payment.failed (payment_timeout)`. A payment already captured won the race and is left
    for orders to settle (its `order.cancelled` refunds it); anything else has nothing to do.
    """
    payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
    if payment is None or payment.status != Status.PENDING:
        logger.info("reservation expired; no pending payment", extra={"order_id": str(order_id)})
        return payment
    _refuse_expired(payment, now=timezone.now())
    return payment


@transaction.atomic
def payment_cancel_for_order(*, order_id: str, user_id: str, customer_email: str, currency: str) -> Payment:
    """`order.cancelled`: captured -> refunded (asynchronously, by key); pending -> voided; none -> tombstone.

    A pending payment whose charge is in flight is voided too: `void_requested` makes the capture, if
    it comes, be refunded at once. The tombstone (a voided row with amount 0) makes a late
    `inventory.reserved` charge nothing.
    """
    for _ in range(2):
        payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
        if payment is not None:
            break
        try:
            with transaction.atomic():
                tombstone = _start_stream(
                    ledger.VOIDED_BEFORE_RESERVATION,
                    {
                        "order_id": str(order_id),
                        "user_id": str(user_id),
                        "customer_email": customer_email or "",
                        "currency": currency or "USD",
                    },
                    at=timezone.now(),
                )
        except IntegrityError:  # inventory.reserved created the payment meanwhile: cancel that one
            continue
        logger.info("order cancelled before its payment existed; tombstone left", extra=_log(tombstone))
        return tombstone
    if payment is None:  # the unique index said the row exists, yet it cannot be read: retry the event
        raise RuntimeError(f"payment of order {order_id} neither found nor creatable")
    now = timezone.now()
    if payment.status == Status.PENDING:
        _void(payment, now=now)
    elif payment.status == Status.CAPTURED and not payment.refund_requested:
        _request_refund(payment, now=now, order_cancelled=True)
    else:
        logger.info("order cancelled; payment needs nothing", extra=_log(payment))
    return payment


# Charging (task payments.payment_charge)


class Outcome(Enum):
    CAPTURED = "captured"
    DECLINED = "declined"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class _ChargeRequest:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    token: str
    was_in_doubt: bool


@dataclass(frozen=True)
class _ChargeResult:
    outcome: Outcome
    charge_id: str = ""
    message: str = ""
    sent: bool = True  # False when the request never left this process (open circuit)


def payment_charge(*, payment_id) -> Payment | None:
    """Try to take the money of a pending payment once; the row says what happens next.

    Captured -> `payment.succeeded`; declined -> failed + `payment.failed (payment_declined)`;
    provider unavailable -> retried with backoff (0.5 s doubling, at most 5 s) until the deadline,
    then failed + `payment.failed (payment_unavailable)`; reservation expired -> voided +
    `payment.failed (payment_timeout)` without calling the provider. A capture that arrives after
    the payment was voided is refunded at once. Runs outside any transaction (it calls the provider).
    """
    request = _start_charge_attempt(payment_id)
    if request is not None:
        result = _send_charge(request)
        if _record_charge_result(request, result):
            payment_refund(payment_id=payment_id)
    return Payment.objects.filter(pk=payment_id).first()


@transaction.atomic
def _start_charge_attempt(payment_id) -> _ChargeRequest | None:
    """(a) Lock the row without waiting; stop unless it still wants charging; claim the attempt."""
    payment = Payment.objects.select_for_update(skip_locked=True).filter(pk=payment_id).first()
    if payment is None:  # unknown, or locked right now by a handler or another attempt
        logger.info("payment busy or unknown; charge skipped", extra={"payment_id": str(payment_id)})
        return None
    if payment.status != Status.PENDING or payment.void_requested:
        return None
    now = timezone.now()
    if payment.expires_at is not None and now >= payment.expires_at:
        _refuse_expired(payment, now=now)
        return None
    request = _ChargeRequest(
        payment_id=str(payment.id),
        order_id=str(payment.order_id),
        amount=payment.amount,
        currency=payment.currency,
        token=payment.payment_token,
        was_in_doubt=payment.charge_in_doubt,
    )
    # Until the answer is recorded the charge may land at the provider without us knowing (in doubt).
    _record(payment, ledger.CHARGE_ATTEMPTED, {"next_attempt_at": _encoded_lease(now)}, at=now)
    return request


def _send_charge(request: _ChargeRequest) -> _ChargeResult:
    """(b) The HTTP call, outside any transaction, under the order's charge key."""
    try:
        answer = clients.create_charge(
            order_id=request.order_id, amount=request.amount, currency=request.currency, token=request.token
        )
    except DownstreamUnavailable as exc:
        return _ChargeResult(Outcome.UNAVAILABLE, message=str(exc), sent=not clients.never_sent(exc))
    if answer.status_code == 200 and answer.body.get("id"):
        return _ChargeResult(Outcome.CAPTURED, charge_id=str(answer.body["id"]))
    if answer.status_code in (400, 402):
        if answer.status_code == 400:
            logger.warning(
                "provider refused the charge request",
                extra={"order_id": request.order_id, "code": answer.error_code},
            )
        return _ChargeResult(Outcome.DECLINED, message=answer.error_message)
    # 409: an earlier request with this key is still being processed; anything else is unexpected.
    return _ChargeResult(Outcome.UNAVAILABLE, message=answer.error_message)


@transaction.atomic
def _record_charge_result(request: _ChargeRequest, result: _ChargeResult) -> bool:
    """(c) Lock the row again and record the answer. True if captured money must go back at once."""
    payment = Payment.objects.select_for_update().get(pk=request.payment_id)
    now = timezone.now()
    if result.outcome is Outcome.CAPTURED:
        return _record_capture(payment, result.charge_id, now=now)
    if result.outcome is Outcome.DECLINED:
        _record_decline(payment, result.message)
    else:
        _record_unavailable(payment, result, request=request, now=now)
    return False


def _record_capture(payment: Payment, charge_id: str, *, now: datetime) -> bool:
    if payment.status == Status.PENDING and not payment.void_requested:
        _record(payment, ledger.CHARGE_SUCCEEDED, {"charge_id": charge_id}, at=now)
        _publish(
            "payment.succeeded",
            payment,
            {"order_id": str(payment.order_id), "payment_id": str(payment.id), **_money(payment)},
        )
        _count_outcome("captured")
        logger.info("payment captured", extra=_log(payment))
        return False
    if payment.status in (Status.VOIDED, Status.FAILED) and not payment.provider_refund_id:
        # The saga gave up on this payment while the charge was in flight: the money goes back.
        logger.warning("capture arrived after the payment was given up; refunding", extra=_log(payment))
        _record(
            payment,
            ledger.LATE_CHARGE_SUCCEEDED,
            {"charge_id": charge_id, "next_attempt_at": _encoded_lease(now)},
            at=now,
        )
        return True
    # A duplicate attempt learnt the same charge; nothing else changes.
    _record(payment, ledger.CHARGE_SUCCEEDED_AGAIN, {"charge_id": charge_id}, at=now)
    return False


def _record_decline(payment: Payment, message: str) -> None:
    # The key's answer is final: nothing was or will be taken (the charge is no longer in doubt).
    if payment.status == Status.PENDING:
        _record(payment, ledger.CHARGE_DECLINED, {"message": message[:500]})
        _publish_failed(payment, Reason.DECLINED, message)
        _count_outcome("declined")
        logger.info("payment declined", extra=_log(payment))
        return
    owed = _owed_as_before(payment)
    if payment.owes_refund and not payment.provider_charge_id:
        owed = {"refund_requested": False, "next_attempt_at": None}  # given up, nothing taken: settled
    _record(payment, ledger.LATE_CHARGE_DECLINED, {"message": message[:500], **owed})


def _record_unavailable(
    payment: Payment, result: _ChargeResult, *, request: _ChargeRequest, now: datetime
) -> None:
    # An attempt that never left is as doubtful as before it; one that left may have landed.
    in_doubt = payment.charge_in_doubt if result.sent else request.was_in_doubt
    message = result.message[:500]
    if payment.status == Status.PENDING:
        if payment.deadline_at is not None and now < payment.deadline_at:
            retry_at = now + _backoff(payment.attempts)
            _record(
                payment,
                ledger.CHARGE_UNAVAILABLE,
                {"message": message, "charge_in_doubt": in_doubt, "next_attempt_at": _encoded(retry_at)},
                at=now,
            )
            logger.warning("provider unavailable; charge will be retried", extra=_log(payment))
            return
        owed = _settlement(payment, in_doubt=in_doubt, now=now, next_attempt_at=None)
        _record(
            payment,
            ledger.CHARGE_DEADLINE_PASSED,
            {"message": message, "charge_in_doubt": in_doubt, **owed},
            at=now,
        )
        _publish_failed(payment, Reason.UNAVAILABLE, UNAVAILABLE_MESSAGE)
        _count_outcome("unavailable")
        logger.warning("provider unavailable past the deadline; payment failed", extra=_log(payment))
        return
    given_up = payment.status in (Status.VOIDED, Status.FAILED)
    owed = _owed_as_before(payment)
    if given_up and not payment.provider_charge_id:
        owed = _settlement(payment, in_doubt=in_doubt, now=now, next_attempt_at=payment.next_attempt_at)
    last_error = message if given_up else payment.last_error
    _record(
        payment,
        ledger.LATE_CHARGE_UNAVAILABLE,
        {"last_error": last_error, "charge_in_doubt": in_doubt, **owed},
        at=now,
    )


def _backoff(attempts: int) -> timedelta:
    seconds = FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))


# Refunding (task payments.payment_refund)


@transaction.atomic
def payment_request_refund(*, payment_id, requested_by: uuid.UUID | None = None) -> Payment:
    """Ask for a captured payment's money back; `requested_by` is identity's id of the staff member asking.

    Only the request is recorded here: the refund itself runs as a task queued after commit (retried
    until the provider answers), and the payment turns refunded when the provider confirmed it, so the
    payment returned is still captured. A refund already requested is left as it is.
    """
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status != Status.CAPTURED:
        raise Conflict("Only a captured payment can be refunded.", code="payment_not_captured")
    if not payment.refund_requested:
        _request_refund(payment, now=timezone.now(), requested_by=requested_by)
    return payment


@dataclass(frozen=True)
class _RefundJob:
    payment_id: str
    order_id: str
    amount: Decimal
    charge_id: str


def payment_refund(*, payment_id) -> Payment | None:
    """Give back the money a payment owes (`refund_requested`), exactly once, by the order's refund key.

    A captured payment becomes refunded. A voided or failed one keeps its status: its money came
    from a capture that raced the saga, or from a charge in doubt, which is first looked up at the
    provider (nothing found: nothing taken, nothing to do). Either way `payment.refunded` is
    published. An unavailable provider is retried by the sweep; a refused refund waits for an
    operator. Runs outside any transaction (it calls the provider).
    """
    job = _start_refund_attempt(payment_id)
    if job is not None:
        charge_id = job.charge_id or _find_charge_in_doubt(job)
        if charge_id:
            _send_refund(job, charge_id)
    return Payment.objects.filter(pk=payment_id).first()


@transaction.atomic
def _start_refund_attempt(payment_id) -> _RefundJob | None:
    payment = Payment.objects.select_for_update(skip_locked=True).filter(pk=payment_id).first()
    if payment is None or not payment.owes_refund:
        return None
    now = timezone.now()
    _record(payment, ledger.REFUND_ATTEMPTED, {"next_attempt_at": _encoded_lease(now)}, at=now)
    return _RefundJob(
        payment_id=str(payment.id),
        order_id=str(payment.order_id),
        amount=payment.amount,
        charge_id=payment.provider_charge_id,
    )


def _find_charge_in_doubt(job: _RefundJob) -> str:
    """Ask the provider what it did under the order's charge key. Returns the captured charge's id."""
    try:
        answer = clients.find_charges(order_id=job.order_id)
    except DownstreamUnavailable as exc:
        _record_refund_retry(job, str(exc))
        return ""
    if answer.status_code != 200:  # 409: a request with the key is still in flight at the provider
        _record_refund_retry(job, answer.error_message)
        return ""
    captured = [charge for charge in answer.body.get("data", []) if charge.get("status") == "succeeded"]
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=job.payment_id)
        if captured:
            _record(payment, ledger.CHARGE_IN_DOUBT_FOUND, {"charge_id": str(captured[0]["id"])})
            logger.warning("a charge in doubt had been captured; refunding", extra=_log(payment))
        else:
            _record(payment, ledger.CHARGE_IN_DOUBT_NOT_FOUND, {})
            logger.info("a charge in doubt was never taken; settled", extra=_log(payment))
    return payment.provider_charge_id


def _send_refund(job: _RefundJob, charge_id: str) -> None:
    try:
        answer = clients.create_refund(order_id=job.order_id, charge_id=charge_id, amount=job.amount)
    except DownstreamUnavailable as exc:
        _record_refund_retry(job, str(exc))
        return
    if answer.status_code == 200 and answer.body.get("id"):
        _record_refund(job, str(answer.body["id"]))
    elif answer.status_code == 409:  # our own earlier refund request is still in flight
        _record_refund_retry(job, answer.error_message)
    else:
        _record_refund_refused(job, answer.error_message)


@transaction.atomic
def _record_refund(job: _RefundJob, refund_id: str) -> None:
    payment = Payment.objects.select_for_update().get(pk=job.payment_id)
    if payment.provider_refund_id:  # a concurrent attempt recorded (and announced) it already
        return
    # A captured payment becomes refunded; a voided or failed one (a racing capture) keeps its status.
    status = Status.REFUNDED if payment.status == Status.CAPTURED else payment.status
    _record(payment, ledger.REFUND_SUCCEEDED, {"refund_id": refund_id, "status": str(status)})
    _publish(
        "payment.refunded",
        payment,
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            **_money(payment),
            "user_id": str(payment.user_id),
            "customer_email": payment.customer_email,
        },
    )
    _count_outcome("refunded")
    logger.info("payment refunded", extra=_log(payment))


@transaction.atomic
def _record_refund_retry(job: _RefundJob, message: str) -> None:
    payment = Payment.objects.select_for_update().get(pk=job.payment_id)
    if payment.owes_refund:
        now = timezone.now()
        retry_at = now + timedelta(seconds=REFUND_RETRY_SECONDS)
        _record(
            payment,
            ledger.REFUND_UNAVAILABLE,
            {"message": message[:500], "next_attempt_at": _encoded(retry_at)},
            at=now,
        )
        logger.warning("refund not done yet; will be retried", extra=_log(payment))


@transaction.atomic
def _record_refund_refused(job: _RefundJob, message: str) -> None:
    """The provider said no: retrying the same request cannot help; an operator has to look."""
    payment = Payment.objects.select_for_update().get(pk=job.payment_id)
    _record(payment, ledger.REFUND_REFUSED, {"message": message[:500]})
    logger.error("provider refused the refund; operator needed", extra={**_log(payment), "error": message})


# The sweep (task payments.payments_retry_due, every PAYMENT_SWEEP_SECONDS)


@transaction.atomic
def payments_requeue_due(*, limit: int = 200) -> int:
    """Queue the work whose `next_attempt_at` has come: charge attempts and refunds.

    Each row is claimed for the lease of one attempt, so the next sweep does not queue it again
    while its task waits in the queue or runs. Returns how many tasks were queued.
    """
    now = timezone.now()
    due = list(
        Payment.objects.select_for_update(skip_locked=True)
        .filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at")[:limit]
    )
    queued = 0
    for payment in due:
        if payment.owes_refund:
            _queue_refund(payment)
        elif payment.status == Status.PENDING:
            _queue_charge(payment)
        else:  # nothing is owed any more
            _record(payment, ledger.DUE_WORK_CLEARED, {}, at=now)
            continue
        _record(payment, ledger.DUE_WORK_QUEUED, {"next_attempt_at": _encoded_lease(now)}, at=now)
        queued += 1
    return queued


# The ledger: every change to a payment is an event in its stream, applied to its row in one transaction.


def _start_stream(event_type: str, data: dict, *, at: datetime) -> Payment:
    """A new payment: the first event of a new stream, and the row it gives."""
    payment_id = uuid.uuid4()
    [event] = event_store.append(
        payment_id=payment_id, expected_version=0, events=[(event_type, data)], at=at
    )
    payment = Payment(**ledger.values_of(ledger.evolve(None, event, payment_id=payment_id)))
    payment.save(force_insert=True)
    return payment


def _record(payment: Payment, event_type: str, data: dict, *, at: datetime | None = None) -> None:
    """Append one event to a locked payment's stream and bring its row (`payment`) up to date with it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a payment's event and its row are written in one transaction")
    [event] = event_store.append(
        payment_id=payment.id,
        expected_version=payment.version,
        events=[(event_type, data)],
        at=at or timezone.now(),
    )
    state = ledger.evolve(ledger.state_of(payment), event, payment_id=payment.id)
    for name, value in ledger.values_of(state).items():
        setattr(payment, name, value)
    payment.save()


def _encoded(value: datetime | None) -> str | None:
    return ledger.encode_time(value)


def _encoded_lease(now: datetime) -> str | None:
    return ledger.encode_time(_lease_until(now))


# Rebuilding projections (management command rebuild_payment_projections)


@dataclass(frozen=True)
class ProjectionDifference:
    """How a payment's row differs from what its stream folds to."""

    payment_id: uuid.UUID
    fields: dict[str, tuple[Any, Any]]  # field: (the row's value, the stream's value)
    row_missing: bool = False  # a stream without its row
    stream_missing: bool = False  # a row without a stream: nothing to rebuild it from


def payment_projections_rebuild(*, payment_id=None, check: bool = False) -> list[ProjectionDifference]:
    """Fold every payment's stream (or one's) and compare it with its row; unless `check`, write the
    stream's values over the row's (or create the missing row). Returns the differences found.

    Safe beside the running service: each payment is rebuilt under its row lock, in its own transaction.
    A row without a stream is reported and left as it is.
    """
    if payment_id is not None:
        payment_id = uuid.UUID(str(payment_id))  # ValueError for what is not a payment id
        has_stream = selectors.payment_stream(payment_id=payment_id).exists()
        if not has_stream and not Payment.objects.filter(pk=payment_id).exists():
            raise NotFound(f"No payment {payment_id}: neither a stream nor a row.")
        ids_pages = [[payment_id]] if has_stream else []
    else:
        ids_pages = _stream_id_pages()
    differences = []
    for ids in ids_pages:
        for stream_id in ids:
            difference = _projection_rebuild(stream_id, check=check)
            if difference is not None:
                differences.append(difference)
    orphans = selectors.payments_without_stream(payment_id=payment_id)
    differences += [ProjectionDifference(orphan, {}, stream_missing=True) for orphan in orphans]
    return differences


def _stream_id_pages():
    page = selectors.payment_stream_ids()
    while page:
        yield page
        page = selectors.payment_stream_ids(after=page[-1])


@transaction.atomic
def _projection_rebuild(payment_id: uuid.UUID, *, check: bool) -> ProjectionDifference | None:
    # The row lock holds live writers back: the stream read next is exactly what the row must reflect.
    row = Payment.objects.select_for_update().filter(pk=payment_id).first()
    folded = ledger.values_of(ledger.fold(payment_id, selectors.payment_stream(payment_id=payment_id)))
    if row is None:
        if not check:
            Payment(**folded).save(force_insert=True)
        return ProjectionDifference(payment_id, {}, row_missing=True)
    current = ledger.values_of(ledger.state_of(row))
    changed = {name: (current[name], value) for name, value in folded.items() if current[name] != value}
    if not changed:
        return None
    if not check:
        for name, value in folded.items():
            setattr(row, name, value)
        row.save()
        logger.warning("payment row rebuilt from its stream", extra={**_log(row), "fields": sorted(changed)})
    return ProjectionDifference(payment_id, changed)


# Helpers


def _void(payment: Payment, *, now: datetime, reason: str = "") -> None:
    """Pending -> voided. If a charge request may have landed, find out and return the money."""
    claimed_until = (
        payment.next_attempt_at if payment.next_attempt_at and payment.next_attempt_at > now else None
    )
    owed = _settlement(payment, in_doubt=payment.charge_in_doubt, now=now, next_attempt_at=None)
    if owed["refund_requested"] and claimed_until is not None:
        # An attempt may be in flight: its own answer settles the doubt; the sweep looks afterwards.
        owed["next_attempt_at"] = _encoded(claimed_until)
    _record(payment, ledger.VOIDED, {"reason": str(reason), **owed}, at=now)
    if payment.refund_requested and claimed_until is None:
        _queue_refund(payment)


def _refuse_expired(payment: Payment, *, now: datetime) -> None:
    """The reservation expired before the money was taken: void the payment, never charge it."""
    _void(payment, now=now, reason=Reason.TIMEOUT)
    _publish_failed(payment, Reason.TIMEOUT, TIMEOUT_MESSAGE)
    _count_outcome("refused_expired")


def _count_outcome(outcome: str) -> None:
    count_after_commit(metrics.PAYMENTS, outcome=outcome)


def _settlement(payment: Payment, *, in_doubt: bool, now: datetime, next_attempt_at: datetime | None) -> dict:
    """What a payment given up owes: if a charge may have landed, that money back (once found), looked
    into at once; otherwise what it owed before, its work due at `next_attempt_at`."""
    if in_doubt and not payment.provider_refund_id:
        return {"refund_requested": True, "next_attempt_at": _encoded(now)}
    return {"refund_requested": payment.refund_requested, "next_attempt_at": _encoded(next_attempt_at)}


def _owed_as_before(payment: Payment) -> dict:
    return {
        "refund_requested": payment.refund_requested,
        "next_attempt_at": _encoded(payment.next_attempt_at),
    }


def _request_refund(
    payment: Payment, *, now: datetime, requested_by: uuid.UUID | None = None, order_cancelled: bool = False
) -> None:
    _record(
        payment,
        ledger.REFUND_REQUESTED,
        {
            "requested_by": str(requested_by) if requested_by else None,
            # A cancelled order no longer wants this money: a racing capture is refunded at once.
            "void_requested": payment.void_requested or order_cancelled,
            "next_attempt_at": _encoded_lease(now),
        },
        at=now,
    )
    _queue_refund(payment)
    logger.info(
        "refund requested", extra={**_log(payment), "requested_by": str(payment.refund_requested_by or "")}
    )


def _lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=clients.worst_case_call_seconds() + LEASE_MARGIN_SECONDS)


def _queue_charge(payment: Payment) -> None:
    run_task_after_commit(CHARGE_TASK, str(payment.id))


def _queue_refund(payment: Payment) -> None:
    run_task_after_commit(REFUND_TASK, str(payment.id))


def _money(payment: Payment) -> dict:
    return {"amount": f"{Decimal(payment.amount):.2f}", "currency": payment.currency}


def _publish(event_type: str, payment: Payment, data: dict) -> None:
    publish_event(event_type, data)
    logger.info("event published", extra={**_log(payment), "event_type": event_type})


def _publish_failed(payment: Payment, reason: str, message: str) -> None:
    _publish(
        "payment.failed",
        payment,
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "reason": str(reason),
            "message": message,
        },
    )


def _log(payment: Payment) -> dict:
    return {"payment_id": str(payment.id), "order_id": str(payment.order_id), "status": payment.status}
