"""{{ cookiecutter.package_name }}: a FastAPI service whose WebSocket endpoints refuse unwanted clients."""
