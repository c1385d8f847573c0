"""What every service answers to OPTIONS (REST_FRAMEWORK's DEFAULT_METADATA_CLASS)."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    """A view's name, description and the media types it renders and parses; no `actions`.

    DRF's SimpleMetadata describes `actions` by calling the view's `get_serializer()` and, for PUT, its
    `get_object()`: that assumes a generic view whose `serializer_class` both reads and writes. Our views
    keep the logic in services and choose the request serializer per method, so for staff (allowed to
    write) those calls either failed (OPTIONS on a catalog product answered 500: the view has no
    queryset) or described the read serializer as the body to send. The OpenAPI document
    (/api/schema/) is the one description of request bodies; the Allow header lists the methods.
    """

    def determine_actions(self, request, view) -> dict:
        return {}
