"""Password policy and Argon2id hashing (argon2-cffi), with rehash on login."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # bounds hashing cost per request

# A small list of the most common passwords; a real deployment can point this at a
# larger breached-password list.
_COMMON = {
    "password123",
    "passw0rd123",
    "1234567890",
    "qwertyuiop",
    "123456789a",
    "iloveyou123",
    "admin12345",
    "letmein1234",
    "welcome123",
    "trustno1234",
}


def policy_violation(password: str, email: str = "") -> str | None:
    """Why this password is refused, or None if acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.lower() in _COMMON:
        return "is too common"
    if len(set(password)) < 4:
        return "needs more distinct characters"
    if email and email.split("@")[0].casefold() in password.casefold() and len(email.split("@")[0]) >= 4:
        return "must not contain the email's name"
    return None


class Hasher:
    def __init__(self, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
        # OWASP's Argon2id baseline: m=19 MiB, t=2, p=1.
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        # A fixed hash to verify against when the account is unknown, so both paths
        # cost the same and timing does not reveal which emails exist.
        self.dummy_hash = self._ph.hash("dummy-password-for-timing")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self._ph.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._ph.check_needs_rehash(stored)
