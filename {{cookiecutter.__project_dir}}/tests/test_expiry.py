"""Placeholder: being written (expiry on live sockets)."""
