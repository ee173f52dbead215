"""Where the guarded WebSocket endpoints live (no imports: safe to read from anywhere)."""

PRE_ACCEPT_PREFIX = "/ws"
ECHO_ENDPOINTS = {"pre_accept": f"{PRE_ACCEPT_PREFIX}/echo"}
# The scope a credential needs on the admin routes.
ADMIN_SCOPE = "admin"
# The same echo, only for credentials that grant the "admin" scope.
ADMIN_ECHO_ENDPOINTS = {"pre_accept": f"{PRE_ACCEPT_PREFIX}/admin/echo"}
