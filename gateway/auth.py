"""Who is calling: tokens from ``Authorization`` (Bearer, or Basic with the token as user name
and password), compared by SHA-256 digest in constant time. Tokens are never stored or logged."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from gateway.config import TokenRef, secret_env
from gateway.errors import Forbidden, Unauthorized


class TokenBook:
    """The named tokens of a deployment, as digests."""

    def __init__(self, tokens: dict[str, TokenRef]) -> None:
        self._entries: list[tuple[str, bytes]] = []
        self.admins: frozenset[str] = frozenset(n for n, t in tokens.items() if t.admin)
        for name, ref in tokens.items():
            hashed = ref.digest_hex()
            if hashed is not None:
                digest = bytes.fromhex(hashed)
            else:
                digest = hashlib.sha256((secret_env(ref.env or "") or "").encode()).digest()
            self._entries.append((name, digest))

    def identify(self, authorization: str | None) -> str | None:
        """The name of the presented token, or None when there is none or it is unknown."""
        token = presented_token(authorization)
        if token is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for name, known in self._entries:  # no early exit: time does not depend on position
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found

    def authorize(self, authorization: str | None, allowed: frozenset[str],
                  what: str) -> str:
        """Return the caller's token name if it may call ``what``; raise 401/403 otherwise."""
        name = self.identify(authorization)
        if name is None:
            if authorization is None:
                raise Unauthorized(f"{what} needs an access token: send "
                                   "`Authorization: Bearer <token>`")
            raise Unauthorized("the access token is not valid")
        if name not in allowed:
            raise Forbidden(f"token `{name}` may not call {what}")
        return name


def presented_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user and password in ("", user):
            return user
    return None
