"""The service's OpenAPI document at /api/schema/: public, generated once per process, and complete.

- Complete: every operation documents the errors it can answer (shared.web.schema), in the contract's
  error shape, so a client (or a schema-based fuzzer) finds every status it may meet in the document.

- Public: credentials that come along (an expired token left in Swagger UI) are ignored, not refused.
- Once, under a lock: drf-spectacular loads its extensions lazily and not thread-safely, so the first
  requests of a fresh process arriving together answered 500 (found by the security suite, which probes
  with eight threads). The document cannot change while the process runs, so it is also kept.
"""

from __future__ import annotations

import threading

from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response


class PublicSchemaView(SpectacularAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    _lock = threading.Lock()
    _documents: dict = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        with self._lock:
            if version not in self._documents:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                self._documents[version] = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, version)
        return Response(
            data=self._documents[version], headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )
