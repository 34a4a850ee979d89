"""The providers of one resolver, by code, with optional replacements (tests, embedding)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pwsup.secrets import locations as loc
from pwsup.secrets.providers.aws import AwsClients
from pwsup.secrets.providers.aws_appconfig import AppConfigProvider
from pwsup.secrets.providers.aws_s3 import S3Provider
from pwsup.secrets.providers.aws_sm import SecretsManagerProvider
from pwsup.secrets.providers.aws_ssm import ParameterStoreProvider
from pwsup.secrets.providers.base import Provider
from pwsup.secrets.providers.config import ConfigProvider
from pwsup.secrets.providers.env import EnvProvider
from pwsup.secrets.providers.file import FileProvider
from pwsup.secrets.providers.plain import PlainProvider


def build(clients: AwsClients, environment: Callable[[], Mapping[str, Any]],
          configuration: Callable[[], Mapping[str, Any]],
          overrides: Mapping[str, Provider] | None = None, *,
          size_limit: int) -> dict[str, Provider]:
    """Every provider; `overrides` replaces some by code. `size_limit` bounds what the
    providers that read unbounded sources (files, S3 objects) take in."""
    providers: dict[str, Provider] = {
        loc.PLAIN: PlainProvider(),
        loc.ENV: EnvProvider(environment),
        loc.CONFIG: ConfigProvider(configuration),
        loc.AWS_SM: SecretsManagerProvider(clients),
        loc.AWS_SSM: ParameterStoreProvider(clients),
        loc.AWS_APP_CONFIG: AppConfigProvider(clients),
        loc.AWS_S3: S3Provider(clients, size_limit),
        loc.FILE: FileProvider(size_limit),
    }
    providers.update(overrides or {})
    return providers
