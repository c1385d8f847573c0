"""catalog: products, categories, prices and search. Everything else comes from shared."""

import environ

from shared.settings import configure

configure(globals(), service="catalog", apps=["catalog"])

# Product list and detail responses are cached this long; every write also invalidates them at once.
CATALOG_CACHE_SECONDS = environ.Env().int("CATALOG_CACHE_SECONDS", default=60)
