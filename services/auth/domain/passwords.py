"""Password policy and Argon2id hashing (argon2-cffi), with rehash on login."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 12  # the console says 12 too (web/pages/login.js)
MAX_LENGTH = 256  # bounds hashing cost per request
# zxcvbn's score: 0-4, 3 = "safely unguessable: moderate protection from offline slow-hash
# scenario" (10^8 guesses or more). Its dictionaries hold the common and breached passwords,
# names and keyboard patterns a 10-word list never could.
MIN_STRENGTH = 3
_JUDGED_CHARS = 100  # zxcvbn's cost grows with length; past this a password is long enough


def policy_violation(password: str, email: str = "") -> str | None:
    """Why this password is refused, or None if acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    name = email.split("@")[0].casefold()
    if email and len(name) >= 4 and name in password.casefold():
        return "must not contain the email's name"
    judged = zxcvbn(password[:_JUDGED_CHARS], user_inputs=[email, name, "tradesense"] if email else ["tradesense"])
    if judged["score"] < MIN_STRENGTH:
        hint = judged["feedback"].get("warning") or "add more words or characters that are hard to guess"
        return f"is too easy to guess: {hint.rstrip('.').lower()}"
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
