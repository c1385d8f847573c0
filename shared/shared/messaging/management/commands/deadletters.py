import json
from dataclasses import asdict

from amqp.exceptions import NotFound
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError

from shared.messaging import deadletters, topology

COLUMNS = (
    "id",
    "task",
    "event_type",
    "reason",
    "queue",
    "death_count",
    "first_death_at",
    "replayed",
    "returns",
)


class Command(BaseCommand):
    help = (
        "See, replay or discard the messages parked in this service's dead-letter queue. "
        "`list` leaves them in place; `replay` puts them back on <service>.events or <service>.tasks "
        "(this service only); `purge` discards them."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "replay", "purge"])
        parser.add_argument(
            "--id", dest="ids", action="append", default=[], metavar="ID", help="a task/event id (repeatable)"
        )
        parser.add_argument(
            "--all", dest="every", action="store_true", help="replay or purge every dead letter"
        )
        parser.add_argument("--limit", type=int, default=50, help="list: how many to show (default 50)")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="list: one JSON object per line"
        )

    def handle(self, *args, **options):
        try:
            self._run(**options)
        except NotFound as exc:
            raise CommandError(f"{exc}. Declare the topology first: manage.py setup_messaging") from exc
        except OperationalError as exc:
            raise CommandError(f"The broker is unreachable: {exc}") from exc

    def _run(self, *, action, ids, every, limit, as_json, **options):
        if action == "list":
            self._list(limit=limit, as_json=as_json)
            return
        if bool(ids) == every:
            raise CommandError(f"{action}: name the messages with --id ID [--id ID ...], or pass --all")
        chosen = None if every else ids
        if action == "replay":
            count = deadletters.replay(chosen)
            self.stdout.write(f"{count} dead letters replayed.")
        else:
            count = deadletters.purge(chosen)
            self.stdout.write(f"{count} dead letters discarded.")
        if ids and count < len(ids):
            self.stderr.write(f"{len(ids) - count} of the named ids were not in the dead-letter queue.")

    def _list(self, *, limit: int, as_json: bool) -> None:
        dead_letters = deadletters.peek(limit)
        if as_json:
            for dead in dead_letters:
                self.stdout.write(_json_line(dead))
            return
        queue = topology.dead_letter_queue_name(settings.SERVICE_NAME)
        if not dead_letters:
            self.stdout.write(f"{queue} is empty.")
            return
        self.stdout.write(f"{queue}: first {len(dead_letters)} (limit {limit})")
        rows = [[_cell(getattr(dead, column)) for column in COLUMNS] for dead in dead_letters]
        widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(COLUMNS)]
        for row in [list(COLUMNS), *rows]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _cell(value) -> str:
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    return str(value)


def _json_line(dead) -> str:
    return json.dumps(asdict(dead), default=str, sort_keys=True)
