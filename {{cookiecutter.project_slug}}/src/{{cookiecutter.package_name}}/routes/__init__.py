"""WebSocket and HTTP routes, one module per concern."""
