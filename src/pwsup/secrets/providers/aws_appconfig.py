"""AWS_APP_CONFIG: an AWS AppConfig profile (`aws:appconfig:app/env/profile`).

The address is `application/environment/profile` (names or ids). It is fetched through
AppConfig Data: a configuration session is started and its latest configuration read,
once per fetch (the cache and the TTL decide how often that happens). The profile's
Content-Type gives the format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pwsup.secrets import formats
from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers import aws
from pwsup.secrets.providers.base import Fetched

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient


class AppConfigProvider:
    cacheable = True

    def __init__(self, clients: aws.AwsClients) -> None:
        self._clients = clients

    def fetch(self, address: str) -> Fetched:
        parts = address.split("/")
        if len(parts) != 3 or not all(parts):
            raise FetchError("an AppConfig address must be application/environment/profile")
        application, environment, profile = parts
        client: AppConfigDataClient = self._clients.get("appconfigdata")
        session = aws.call("StartConfigurationSession", lambda: client.start_configuration_session(
            ApplicationIdentifier=application, EnvironmentIdentifier=environment,
            ConfigurationProfileIdentifier=profile))
        token = session["InitialConfigurationToken"]
        latest = aws.call("GetLatestConfiguration",
                          lambda: client.get_latest_configuration(ConfigurationToken=token))
        data = aws.call("GetLatestConfiguration", latest["Configuration"].read)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FetchError("the AppConfig configuration is not valid UTF-8") from None
        return Fetched(text, formats.from_mime_type(latest.get("ContentType")))
