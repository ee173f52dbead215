"""FastAPI dependencies that hand endpoints what ``create_app`` built once."""

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .policy import AdmissionPolicy
from .settings import Settings


def get_settings(connection: HTTPConnection) -> Settings:
    return connection.app.state.settings


def get_policy(connection: HTTPConnection) -> AdmissionPolicy:
    return connection.app.state.policy


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[AdmissionPolicy, Depends(get_policy)]
