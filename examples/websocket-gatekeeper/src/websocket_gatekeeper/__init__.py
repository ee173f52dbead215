"""websocket_gatekeeper: a FastAPI service whose WebSocket endpoints refuse unwanted clients."""
