"""Page-numbered lists (design: `{count, next, previous, results}`), with a strict `page` parameter.

DRF's own reads `?page=` and `?page=abc` as the first page and answers `?page=0` with 404: a client's
mistake passes unseen or looks like a missing resource. Here a page that is not a positive integer is a
400 naming the parameter; a page past the end stays a 404 (there is no such page).
"""

from __future__ import annotations

from rest_framework import pagination, serializers


class PageNumberPagination(pagination.PageNumberPagination):
    def paginate_queryset(self, queryset, request, view=None):
        page = request.query_params.get(self.page_query_param)
        if page is not None and not (page.isascii() and page.isdigit() and int(page) >= 1):
            raise serializers.ValidationError(
                {self.page_query_param: ["A page number is a positive integer."]}
            )
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters
