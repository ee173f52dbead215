import os
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cases import SETTINGS_ENV
from live_server import WS_IMPLEMENTATIONS, LiveServer
from nginx_proxy import NginxProxy, find_nginx
from redis_server import RedisServer, find_redis

# The app module builds `app` from the environment when it is imported; give it the
# test configuration first (environment variables win over a developer's .env).
os.environ.update(SETTINGS_ENV)

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:  # `with`: runs the lifespan (store, keys)
        yield client


@pytest.fixture(scope="session", params=[*WS_IMPLEMENTATIONS, "nginx"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real uvicorn on 127.0.0.1, once per ``--ws`` implementation, and once behind
    nginx (deploy/nginx.conf in front of the ``python -m`` launcher)."""
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "nginx":
        find_nginx()  # skip or fail before starting anything
        with LiveServer(workdir, launcher=True) as upstream, NginxProxy(upstream, workdir) as proxy:
            yield proxy  # type: ignore[misc]  (same interface as LiveServer)
        proxy.assert_no_unexpected_errors()
        return
    with LiveServer(workdir, ws=request.param) as server:
        yield server
    server.assert_no_unexpected_errors()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh redis-server per test: tests stop, freeze and restart it."""
    find_redis()
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server
