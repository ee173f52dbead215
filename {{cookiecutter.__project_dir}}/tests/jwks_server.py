"""Placeholder: being written (JWT verifier, JWKS over HTTP)."""
