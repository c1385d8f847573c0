"""A key pair for developer machines and tests: generated once into `var/keys/` and shared by every local
service (never used when the keys come from the environment, as in deployments).

Developer tooling rather than what a service needs to verify tokens (shared.auth.keys loads them); kept
here until the developer tools have a package of their own.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)


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
