"""The JSON Web Key Set identity publishes at `/.well-known/jwks.json` (RFC 7517).

Only identity publishes its key; every other service verifies tokens with the public key it is given
(shared.auth.keys), so this lives here rather than in the shared package.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm


def jwks_document(public_pem: str) -> dict:
    """The JSON Web Key Set publishing the verification key, keyed by its thumbprint."""
    public_key = serialization.load_pem_public_key(public_pem.encode())
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    jwk.update({"use": "sig", "alg": "RS256", "kid": key_id(public_pem)})
    return {"keys": [jwk]}


def key_id(public_pem: str) -> str:
    """RFC 7638 thumbprint of the public key: stable, so clients can cache the JWKS by `kid`."""
    public_key = serialization.load_pem_public_key(public_pem.encode())
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
