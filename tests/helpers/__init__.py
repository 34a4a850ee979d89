"""Helpers shared by the integration and chaos tests: processes, pwsup runs, child scripts."""
