"""JWT (RS256) signing and verification keys, as every service loads them.

identity signs tokens with its private key; every other service verifies them locally with the public
key, so no request needs a round trip to identity. Keys come from the environment: `JWT_PRIVATE_KEY` and
`JWT_PUBLIC_KEY` as PEM text, or `JWT_PRIVATE_KEY_FILE` and `JWT_PUBLIC_KEY_FILE` naming files (mounted
secrets; on a developer machine the pair manage_all.py generates into `var/keys/`, devtools.keys).
A service never generates keys: without them it refuses to start, saying which variable to set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from shared.paths import REPO_ROOT

DEFAULT_KEY_DIR = REPO_ROOT / "var" / "keys"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # empty for services that only verify
    public_pem: str


def load_key_pair(env, *, signs: bool) -> KeyPair:
    """The public key, and the private one when this service `signs`: PEM text from the environment, else
    the file it names (by default the local pair in var/keys/)."""
    public_pem = env.str("JWT_PUBLIC_KEY", default="") or _read(
        env.str("JWT_PUBLIC_KEY_FILE", default=str(DEFAULT_KEY_DIR / "jwt-public.pem")), "JWT_PUBLIC_KEY"
    )
    private_pem = ""
    if signs:
        private_pem = env.str("JWT_PRIVATE_KEY", default="") or _read(
            env.str("JWT_PRIVATE_KEY_FILE", default=str(DEFAULT_KEY_DIR / "jwt-private.pem")),
            "JWT_PRIVATE_KEY",
        )
    return KeyPair(private_pem=private_pem, public_pem=public_pem)


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"no {variable}: set it (PEM text) or {variable}_FILE; {path} cannot be read ({exc.strerror}). "
            "On a developer machine, `python3 manage_all.py up` generates the local pair."
        ) from None
