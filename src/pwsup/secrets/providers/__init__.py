"""Secret providers, one module each; `registry.build` assembles the set for a resolver.

Every provider is built per `Resolver` (not per process): AWS clients live as long as the
resolver, and ENV/CONFIG read that resolver's working environment and configuration.
"""

from __future__ import annotations

from pwsup.secrets.providers.base import Fetched, Provider

__all__ = ["Fetched", "Provider"]
