"""Debian's nginx, configured with deploy/nginx.conf, in front of a live server.

nginx cannot bind port 0 and report the port it got, and its only way to take
over a bound socket (the ``NGINX`` variable of a binary upgrade) needs a master
process with workers. So it is told a port from ``unreserved_ports()`` (which no
``bind(0)`` or ``connect()`` elsewhere is handed) and, should another server
already hold that one, started again on the next.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from live_server import ADDRESS_IN_USE, PORT_ATTEMPTS, LiveServer, unreserved_ports

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"


def find_nginx() -> str:
    """The nginx binary, or skip (fail where REQUIRE_NGINX is set) saying so loudly."""
    found = os.environ.get("NGINX") or shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if found:
        return found
    message = "NGINX NOT FOUND: the reverse-proxy tests did NOT run (apt-get install nginx)"
    if os.environ.get("REQUIRE_NGINX"):
        pytest.fail(message)
    pytest.skip(message)


class NginxProxy:
    """deploy/nginx.conf with only its addresses and file paths changed, in the foreground."""

    def __init__(self, upstream: LiveServer, workdir: Path) -> None:
        self.upstream = upstream
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = 0  # chosen in __enter__
        self.process: subprocess.Popen[bytes] | None = None

    # The same URLs, HTTP helper and exit as LiveServer (whose interface tests use).
    http_url = LiveServer.http_url
    ws_url = LiveServer.ws_url
    get = LiveServer.get
    __exit__ = LiveServer.__exit__

    @property
    def log(self) -> str:
        access = self.workdir / "access.log"
        return self.upstream.log + (access.read_text() if access.exists() else "")

    def config(self) -> str:
        text = CONFIG.read_text()
        text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{self.upstream.port};")
        text = text.replace("listen 80;", f"listen {self.host}:{self.port};")
        text = re.sub(r"^pid .*;$", f"pid {self.workdir}/nginx.pid;", text, flags=re.MULTILINE)
        text = re.sub(r"/var/log/nginx/\S+\.access\.log", str(self.workdir / "access.log"), text)
        text = re.sub(r"/var/log/nginx/\S+\.error\.log", str(self.workdir / "error.log"), text)
        temp_paths = "".join(
            f"    {kind}_temp_path {self.workdir}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        text = text.replace("http {\n", "http {\n" + temp_paths, 1)
        # One foreground process: no daemon, no privilege drop to a worker user.
        return "daemon off;\nmaster_process off;\n" + text

    def __enter__(self) -> "NginxProxy":
        nginx = find_nginx()
        for self.port in unreserved_ports():
            if self._start(nginx):
                return self
        raise RuntimeError(f"nginx found no free port in {PORT_ATTEMPTS} attempts")

    def _start(self, nginx: str) -> bool:
        """Start on ``self.port`` and wait for /health; False if that port was taken."""
        path = self.workdir / "nginx.conf"
        path.write_text(self.config())
        stderr = self.workdir / "nginx.stderr"
        with stderr.open("wb") as output:
            command = [nginx, "-c", str(path), "-p", str(self.workdir), "-e", "stderr"]
            self.process = subprocess.Popen(command, stderr=output)
        deadline = time.monotonic() + 20  # nginx itself retries a taken port for 2.5 s
        while self.get("/health")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                errors = stderr.read_text(errors="replace")
                if ADDRESS_IN_USE in errors.lower():
                    return False
                raise RuntimeError(f"nginx did not start: {errors}")
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def assert_no_unexpected_errors(self) -> None:
        self.upstream.assert_no_unexpected_errors()
