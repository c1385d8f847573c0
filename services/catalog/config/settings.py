"""catalog: products, categories, prices and search. Everything else comes from shared."""

from pathlib import Path

import environ

from shared.settings import service_settings

env = environ.Env()

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="catalog",
        apps=["catalog"],
        extra={
            # Product list and detail responses are cached this long; every write also invalidates them.
            "CATALOG_CACHE_SECONDS": env.int("CATALOG_CACHE_SECONDS", default=60),
        },
    )
)
