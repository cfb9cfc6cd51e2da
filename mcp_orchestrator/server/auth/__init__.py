"""Credentials for the HTTP transports: static bearer tokens, OAuth 2.1 JWTs, principals and limits.

Everything here sits on the MCP SDK's own auth support (``mcp.server.auth``): the verifiers are its
``TokenVerifier``, its bearer middleware answers 401 with ``WWW-Authenticate``, and it serves the
protected-resource metadata. Imports: ``contracts``, ``errors``, ``guards``, ``store._files`` and the SDK.
"""
