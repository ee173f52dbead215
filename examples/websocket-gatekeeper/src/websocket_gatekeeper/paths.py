"""Where the guarded WebSocket endpoints live (no side effects: safe to import anywhere)."""

# Each strategy on its own routes, so both can be compared side by side.
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo",
}
