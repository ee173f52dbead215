"""An identity provider for the RS256 rows: a JWKS on 127.0.0.1 and a token it signed.

Run with the baked project's Python (PyJWT with cryptography, as a ``jwt``
project installs). Binds port 0 itself, prints one JSON line
``{"url": ..., "token": ...}`` and serves until it is terminated.
"""

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "benchmark"


def main() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    claims = {"sub": "alice", "exp": int(time.time()) + 24 * 3600}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
    url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    print(json.dumps({"url": url, "token": token}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
