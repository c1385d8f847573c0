"""E-mail backend plumbing.

Django's file backend names its file after the current second and the backend object's `id()`. Every
send opens a new backend object, and CPython readily reuses a freed object's address, so two e-mails
sent within the same second often end up appended to one file. Ours names each file uniquely, so the
mail directory holds one file per e-mail (what a developer or a test counts). config/settings.py
puts it in place of Django's file backend.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from django.core.mail.backends.filebased import EmailBackend as DjangoFileBackend


class FileEmailBackend(DjangoFileBackend):
    def _get_filename(self) -> str:
        if self._fname is None:
            timestamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
            self._fname = os.path.join(self.file_path, f"{timestamp}-{uuid.uuid4().hex[:12]}.log")
        return self._fname
