"""JWT (RS256) signing and verification keys.

identity signs tokens with its private key; every other service verifies them locally with the public
key, so no request needs a round trip to identity. Keys come from the environment (`JWT_PRIVATE_KEY`,
`JWT_PUBLIC_KEY` as PEM text, or `*_FILE` paths to mounted secrets). On a developer machine, where
neither is given, a key pair is generated once into `var/keys/` (git-ignored) and shared by all the
local services.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KEY_DIR = REPO_ROOT / "var" / "keys"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # empty for services that only verify
    public_pem: str


def generate_pair() -> tuple[bytes, bytes]:
    """A new RSA key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _write_once(path: Path, content: bytes, mode: int) -> None:
    """Create `path` atomically; if another process won the race, keep its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    try:
        os.write(fd, content)
        os.fchmod(fd, mode)
        os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def ensure_local_key_pair(private_path: Path, public_path: Path) -> None:
    """Generate the development key pair on first start (never used when keys come from the env)."""
    if private_path.exists() and public_path.exists():
        return
    private, public = generate_pair()
    _write_once(private_path, private, 0o600)
    _write_once(public_path, public, 0o644)
    logger.info("generated a local JWT key pair", extra={"path": str(private_path.parent)})


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
