"""Debian's nginx, configured with deploy/nginx.conf, in front of a live server."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from live_server import LiveServer, free_port

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
        self.port = free_port()
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
        path = self.workdir / "nginx.conf"
        path.write_text(self.config())
        command = [find_nginx(), "-c", str(path), "-p", str(self.workdir), "-e", "stderr"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while self.get("/health")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def assert_no_unexpected_errors(self) -> None:
        self.upstream.assert_no_unexpected_errors()
