"""The platform's public entry point: nginx configuration rendering and the token verifier it asks."""
