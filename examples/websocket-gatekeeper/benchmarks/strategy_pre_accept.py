"""The generated pre-accept guard in front of the benchmark's FastAPI app."""

from apps import POLICY, fastapi_app, with_plain_echo

from websocket_gatekeeper.pre_accept import PreAcceptGuard

LABEL = "pre-accept guard"
REFUSAL = "HTTP 401"  # what a client without a token receives
# The same app without the guard: its overhead on allowed traffic is measured against it.
WITHOUT_GUARD = "apps:unguarded"

app = with_plain_echo(fastapi_app())
app.add_middleware(PreAcceptGuard, policy=POLICY)
