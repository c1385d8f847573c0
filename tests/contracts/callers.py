"""Customers and staff made for one fuzzing run, for real: registered through identity's API, and made
staff the way an operator would without the API (identity's `manage.py shell`), so that no earlier run's
fuzzing (which may deactivate users) can stand in the way."""

from __future__ import annotations

import uuid

import requests

PASSWORD = "contract-fuzz-pass-93"


class Callers:
    def __init__(self, platform) -> None:
        self.platform = platform
        self.http = requests.Session()
        self.http.trust_env = False

    def customer(self) -> str:
        return self._sign_in(self._register())

    def staff(self) -> str:
        email = self._register()
        promote = f"User.objects.filter(email={email!r}).update(is_staff=True)"
        code = f"from identity.models import User; print({promote})"
        answer = self.platform.manage_all("manage", "identity", "shell", "-c", code, timeout=120)
        assert answer.returncode == 0 and answer.stdout.strip().endswith("1"), answer.stdout + answer.stderr
        return self._sign_in(email)

    def still_signed_in(self, token: str) -> bool:
        answer = self.http.get(
            self.platform.url("identity", "/api/v1/auth/me/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return answer.status_code == 200

    def _register(self) -> str:
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Contract Fuzzer"}
        answer = self.http.post(
            self.platform.url("identity", "/api/v1/auth/register/"), json=body, timeout=10
        )
        assert answer.status_code == 201, answer.text
        return email

    def _sign_in(self, email: str) -> str:
        body = {"email": email, "password": PASSWORD}
        answer = self.http.post(self.platform.url("identity", "/api/v1/auth/token/"), json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["access"]
