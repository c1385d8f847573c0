"""What every service's Django admin shares beyond single sign-on (docs/admin.md).

- `nav`: the platform's services and where their admins are; the bar at the top of every admin page
  (`templates/admin/base_site.html`, tag `{% service_nav %}`) links to the other services' admins.
- `links`: a link from an id of another service's object to its page in that service's admin.
- `readonly`: view-only model admins (no add, change, delete; Django then renders no Save buttons).
- `changelists`: list pages read where lag is tolerated (the read replica, shared.replica).
- `actors`: who did something in the admin, as identity's user id.
- `confirm`: the intermediate "are you sure" page of an admin action that moves money or discards.
- `testing`: services' admin tests log in as the shadow user single sign-on makes.
- `redaction`: the fields no operator's page displays (card tokens), masked in envelopes too.

Installed first in INSTALLED_APPS (shared.settings), so its `admin/base_site.html` wins over Django's.
"""
