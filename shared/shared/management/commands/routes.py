"""`manage.py routes`: every URL pattern the service answers, as a JSON array (machine-readable, for the
security suite's check that every route has a line in the access policy)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.urls import URLResolver, get_resolver


def url_patterns(patterns, prefix: str = ""):
    """Each pattern's full route (Django's route syntax or regex, as written), resolvers expanded."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, route)
        else:
            yield route


class Command(BaseCommand):
    help = "Print every URL pattern of this service as a JSON array."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(sorted(set(url_patterns(get_resolver().url_patterns)))))
