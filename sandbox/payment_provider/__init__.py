"""A stand-in for an external card processor (Stripe-like), run as its own HTTP server.

See README.md for the API and the fault knobs; `app.application` is the WSGI entry point.
"""
