"""Single sign-on for the six Django admins behind the gateway (see docs/admin.md).

identity's admin login is the one login page. When a staff member logs in there, identity sets the
`admin_sso` cookie: a short-lived RS256 JWT signed with identity's key, audience "admin", HttpOnly,
SameSite=Lax, Path=/admin/, so the browser sends it to every service's admin through the gateway.
Every other service verifies it on each admin request with identity's public key (signature, issuer,
audience, expiry, the user's deactivation in `shared.auth.revoked_since`, the cookie's own logout in
Redis) and treats the visitor as a local shadow staff user made from the claims. Nothing is kept in
those services' sessions, so a cookie that is gone, expired or revoked ends access at once.

- `tokens`: issue, verify, revoke the cookie's token; set and delete the cookie.
- `sites`: the admin sites (identity's issues the cookie; the others send visitors to identity).
- `middleware`: the consuming services' per-request check and the shadow user.
- `apps`: AdminConfig classes that make those sites the default `admin.site`.
"""
