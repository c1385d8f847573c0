"""Change lists that tolerate lag: a model admin's list page, when only looked at (GET), reads the replica
when it may (shared.replica: up to REPLICA_MAX_LAG_SECONDS behind, never behind the operator's own
writes). Its actions (POSTs of the same page), detail pages, forms and everything else read the primary.
"""

from __future__ import annotations

from shared.replica.reads import lag_tolerant

_MARK = "_lag_tolerant_change_list"


class LagTolerantChangeListMixin:
    """Mix into a ModelAdmin, before admin.ModelAdmin."""

    def changelist_view(self, request, extra_context=None):
        setattr(request, _MARK, request.method in ("GET", "HEAD"))
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return lag_tolerant(queryset) if getattr(request, _MARK, False) else queryset
