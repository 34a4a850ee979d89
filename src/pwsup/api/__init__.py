"""The CloudReactor Task Execution protocol: bodies, retry policy and the HTTP client.

Used only by the reporter process; the parent never imports this package.
"""
