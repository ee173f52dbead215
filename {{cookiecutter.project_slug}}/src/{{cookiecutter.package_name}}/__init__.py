"""A FastAPI service whose WebSocket endpoints admit the right clients and refuse the rest."""
