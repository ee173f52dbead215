"""The generated accept-then-close endpoint."""

from apps import fastapi_app

from websocket_gatekeeper.routes import accept_then_close_echo

LABEL = "accept-then-close"
REFUSAL = "close 4401"  # what a client without a token receives
WITHOUT_GUARD = None  # nothing to compare: the refusal lives in the endpoint

app = fastapi_app()
app.include_router(accept_then_close_echo.router, prefix="/ws")
