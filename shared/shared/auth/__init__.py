"""Who is calling: identity's tokens, verified the same way by every service and by the gateway.

identity is the authority for users, roles and sign-ins; it signs every token with its private key.
Everything else verifies with the public key, locally, and asks one shared revocation list whether a
token has been withdrawn since it was issued (docs/security.md has the whole model).

- `tokens`: the rules that make a token valid (access, admin single sign-on, service); no Django.
- `revocation`: the revocation list in Redis and the policy when Redis does not answer; no Django.
- `api`: DRF authentication and permission classes built on the two (every service's API).
- `client`: a service's own token (client-credentials grant) for other services' `/internal/` routes.
- `keys`: the signing and verification keys, loaded from the environment (or the local pair).
- `local_keys`: the key pair generated for developer machines and tests.
- `admin_sso`: single sign-on for the Django admins, on identity's cookie (a Django app).

`tokens` and `revocation` import nothing from Django so that the gateway's verifier uses them as they are.
"""
