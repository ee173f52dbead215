"""Where the guarded WebSocket endpoints live (no side effects: safe to import anywhere)."""

{% if cookiecutter.rejection_strategy == "both" -%}
# Each strategy on its own routes, so both can be compared side by side.
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo",
}
{%- elif cookiecutter.rejection_strategy == "pre_accept" -%}
PRE_ACCEPT_PREFIX = "/ws"
ECHO_ENDPOINTS = {"pre_accept": f"{PRE_ACCEPT_PREFIX}/echo"}
{%- else -%}
ACCEPT_THEN_CLOSE_PREFIX = "/ws"
ECHO_ENDPOINTS = {"accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo"}
{%- endif %}
