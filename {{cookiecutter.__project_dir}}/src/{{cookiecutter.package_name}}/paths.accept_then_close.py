"""Where the guarded WebSocket endpoints live (no imports: safe to read from anywhere)."""

ACCEPT_THEN_CLOSE_PREFIX = "/ws"
ECHO_ENDPOINTS = {"accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo"}
# The scope a credential needs on the admin routes.
ADMIN_SCOPE = "admin"
# The same echo, only for credentials that grant the "admin" scope.
ADMIN_ECHO_ENDPOINTS = {"accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/admin/echo"}
