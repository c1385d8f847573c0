"""JWT (RS256) signing and verification keys, as every service loads them.

identity signs tokens with its private key; every other service verifies them locally with the public
key, so no request needs a round trip to identity. Keys come from the environment (`JWT_PRIVATE_KEY`,
`JWT_PUBLIC_KEY` as PEM text, or `*_FILE` paths to mounted secrets). On a developer machine, where
neither is given, the local key pair in `var/keys/` (git-ignored, see shared.auth.local_keys) is used and
generated on first use, unless JWT_KEYS_FROM_ENV_ONLY forbids it (deployments).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.auth.local_keys import ensure_local_key_pair
from shared.paths import REPO_ROOT

DEFAULT_KEY_DIR = REPO_ROOT / "var" / "keys"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # empty for services that only verify
    public_pem: str


def load_key_pair(env, *, signs: bool) -> KeyPair:
    """Read the keys from the environment, or from the local key folder (generated if missing)."""
    private_pem = env.str("JWT_PRIVATE_KEY", default="") if signs else ""
    public_pem = env.str("JWT_PUBLIC_KEY", default="")
    private_path = Path(env.str("JWT_PRIVATE_KEY_FILE", default=str(DEFAULT_KEY_DIR / "jwt-private.pem")))
    public_path = Path(env.str("JWT_PUBLIC_KEY_FILE", default=str(DEFAULT_KEY_DIR / "jwt-public.pem")))
    if (signs and not private_pem) or not public_pem:
        if not env.bool("JWT_KEYS_FROM_ENV_ONLY", default=False):
            ensure_local_key_pair(private_path, public_path)
        if signs and not private_pem:
            private_pem = private_path.read_text()
        if not public_pem:
            public_pem = public_path.read_text()
    return KeyPair(private_pem=private_pem, public_pem=public_pem)
