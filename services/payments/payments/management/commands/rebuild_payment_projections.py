import uuid

from django.core.management.base import BaseCommand, CommandError

from payments import ledger, services
from shared.web.errors import NotFound


class Command(BaseCommand):
    help = (
        "Rebuild payment rows from their ledger streams (docs/payments-ledger.md). With --check, only "
        "report the rows that differ from their streams, and exit with status 1 if any does."
    )

    def add_arguments(self, parser):
        parser.add_argument("--payment", metavar="ID", help="only this payment (its id)")
        parser.add_argument("--check", action="store_true", help="report differences; write nothing")

    def handle(self, *args, payment=None, check=False, **options):
        try:
            differences = services.payment_projections_rebuild(payment_id=_payment_id(payment), check=check)
        except (NotFound, ledger.LedgerError) as exc:  # no such payment; a stream that cannot be folded
            raise CommandError(str(exc)) from exc
        for difference in differences:
            self.stdout.write(_describe(difference, check=check))
        orphans = sum(difference.stream_missing for difference in differences)
        rebuilt = len(differences) - orphans
        if check:
            if differences:
                raise CommandError(f"{len(differences)} payments differ from their streams.")
            self.stdout.write(self.style.SUCCESS("Every payment row matches its stream."))
            return
        self.stdout.write(self.style.SUCCESS(f"{rebuilt} payment rows rebuilt from their streams."))
        if orphans:
            raise CommandError(f"{orphans} payment rows have no stream to rebuild them from.")


def _payment_id(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise CommandError(f"--payment {value!r} is not a payment id.") from exc


def _describe(difference: services.ProjectionDifference, *, check: bool) -> str:
    payment = f"payment {difference.payment_id}"
    if difference.stream_missing:
        return f"{payment}: no stream (its row was written around the ledger); left as it is"
    if difference.row_missing:
        return f"{payment}: no row" + ("" if check else "; created from its stream")
    fields = "; ".join(
        f"{name}: row {row!r}, stream {stream!r}" for name, (row, stream) in difference.fields.items()
    )
    return f"{payment}: {fields}"
