"""``GET /ready``: whether this instance can do its job now (readiness).

``/health`` says the process is alive (restart it if not); ``/ready`` says the
parts admission depends on answer: the store (rates, leases, tickets) and the
credential verifier's key source. A load balancer probes ``/ready`` to send
clients elsewhere while they do not; ``/health`` stays liveness only.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    admission = request.app.state.admission
    unready = []
    if not await admission.store.ping():
        unready.append("store")
    part = admission.verifier.readiness()
    if part is not None:
        unready.append(part)
    headers = {"cache-control": "no-store"}
    if unready:
        body = {"status": "unready", "unready": unready}
        return JSONResponse(body, status_code=503, headers=headers)
    return JSONResponse({"status": "ready"}, headers=headers)
