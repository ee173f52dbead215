"""Where the guarded WebSocket endpoints live (no imports: safe to read from anywhere)."""

# Each strategy on its own routes, so both can be compared side by side.
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo",
}
# The scope a credential needs on the admin routes.
ADMIN_SCOPE = "admin"
# The same echo, only for credentials that grant the "admin" scope.
ADMIN_ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/admin/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/admin/echo",
}
