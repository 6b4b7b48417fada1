"""Password hashing (scrypt), API tokens and random secrets.

Passwords are stored as ``scrypt$N$r$p$salt$hash`` (base64) so the cost can be raised later
without breaking stored hashes.  API tokens are random and stored only as SHA-256 digests:
a stolen database does not reveal a working token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

_N, _R, _P = 2**14, 8, 1
_ALPHABET = string.ascii_letters + string.digits


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("пароль не может быть пустым")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def random_password(length: int = 14) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_token() -> tuple[str, str]:
    """A new token and its stored digest. The token itself is shown once."""
    token = "ssk_" + secrets.token_urlsafe(32)
    return token, token_digest(token)
