"""Fill in the users' password hashes of a RabbitMQ definitions file from the environment.

    python render_definitions.py TEMPLATE OUTPUT

A user whose `password_hash` is empty in TEMPLATE gets the password from RABBITMQ_<NAME>_PASSWORD
(e.g. RABBITMQ_PLATFORM_PASSWORD for `platform`), hashed as RabbitMQ does
(rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4 random salt bytes).
Run by the rabbitmq-definitions job in compose/docker-compose.yml, before the broker starts, so that no
password is ever committed. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path


def password_hash(password: str) -> str:
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def render(template: dict, environ: dict) -> dict:
    missing = []
    for user in template.get("users", []):
        if user.get("password_hash"):
            continue
        variable = f"RABBITMQ_{user['name'].upper().replace('-', '_')}_PASSWORD"
        password = environ.get(variable, "")
        if not password:
            missing.append(variable)
            continue
        user["password_hash"] = password_hash(password)
        user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    if missing:
        raise SystemExit(f"render_definitions: set {', '.join(missing)} (compose/.env)")
    return template


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    template = json.loads(Path(argv[1]).read_text())
    output = Path(argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(render(template, dict(os.environ)), indent=2) + "\n")
    output.chmod(0o644)  # read by the broker's own user
    print(f"render_definitions: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
