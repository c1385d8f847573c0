"""Single sign-on for the six Django admins behind the gateway (see docs/admin.md).

identity's admin login is the one login page. A staff login there starts an admin sign-in (a row in
identity) and sets the `admin_sso` cookie: a short-lived RS256 JWT signed with identity's key, audience
"admin", carrying the sign-in's id, HttpOnly, SameSite=Lax, honoured by the admins and Flower only. Every
other service verifies it on each admin request with identity's public key and the shared revocation
list (shared.auth) and treats the visitor as a local shadow staff user made from the claims. Nothing is
kept in those services' sessions, so logout (which ends the sign-in and with it every cookie minted for
it), expiry, demotion and deactivation end access at once.

- `tokens`: read and verify the cookie; set and delete it.
- `sites`: the consuming services' admin site, which sends visitors to identity's login.
- `middleware`: the consuming services' per-request check and the shadow user.
- `apps`: the AdminConfig that makes that site the default `admin.site`.

identity's own side (issuing the cookie, ending sign-ins) lives in identity.admin_site.
"""
