"""The one form of an e-mail address: what registration stores, what sign-in and every lookup match.

The rule (docs/security.md, "E-mail addresses"):

1. Unicode NFKC: compatibility forms become their plain letters (fullwidth letters and the fullwidth
   at sign U+FF20 become ASCII, the Kelvin sign U+212A is K, the long s U+017F is s).
2. The local part (before the last `@`) must then be ASCII, and is lower-cased. Non-ASCII local parts
   are refused: nothing like IDNA makes a look-alike visible there (a Cyrillic a, U+0430, looks exactly
   like the Latin one), few mail systems deliver to them (SMTPUTF8), and case-folding them is where
   Python and the database disagreed (U+0130, I with a dot, lower-cases to two characters in Python).
3. The domain is converted to its IDNA ASCII form (UTS #46 mapping, IDNA 2008): case and width fold,
   invisible characters go, and a look-alike domain becomes a visibly different `xn--` name (example.com
   with a Cyrillic a is `xn--exmple-4nf.com`).
4. The result must be a valid address (Django's EmailValidator) of at most 254 characters.

Stored addresses are in this form and looked up by exact match, so an address that registers signs in
however it is typed, and two addresses that normalize alike are the same account.
"""

from __future__ import annotations

import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_LENGTH = 254  # RFC 5321's path limit, and User.email's column

NON_ASCII_LOCAL_PART = (
    "Use an address whose part before the @ is in plain ASCII letters, digits and punctuation: "
    "look-alike letters from other scripts cannot be told apart there."
)
INVALID_DOMAIN = "The domain of this address is not a valid domain name."
TOO_LONG = f"An address has at most {MAX_LENGTH} characters (domains count in their ASCII form)."


def normalize_email(address: str) -> str:
    """`address` in its one stored form; raises django's ValidationError if it has none (see above)."""
    address = unicodedata.normalize("NFKC", address).strip()
    local, at, domain = address.rpartition("@")
    if not (at and local and domain):
        raise ValidationError("Enter a valid e-mail address.", code="invalid")
    if not local.isascii():
        raise ValidationError(NON_ASCII_LOCAL_PART, code="non_ascii_local_part")
    normalized = f"{local.lower()}@{_ascii_domain(domain)}"
    if len(normalized) > MAX_LENGTH:
        raise ValidationError(TOO_LONG, code="max_length")
    validate_email(normalized)
    return normalized


def _ascii_domain(domain: str) -> str:
    if domain.isascii():  # already its ASCII form (an `xn--` label included); syntax is validate_email's
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValidationError(INVALID_DOMAIN, code="invalid_domain") from exc
