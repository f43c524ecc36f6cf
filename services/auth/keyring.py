"""Ed25519 signing keys kept as PEM files in a directory (a Kubernetes Secret in production).

Layout: `<kid>.pem` per key, and `active` naming the key that signs. Every key in
the directory is published in the JWKS and verifies; rotation = add a key and make
it active; retirement = delete the old file once its tokens have expired.
Generated on first local run so `make run` needs no set-up.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


class KeyRing:
    def __init__(self, directory: Path, *, generate_if_empty: bool = True) -> None:
        self.directory = directory
        self.generate_if_empty = generate_if_empty
        self.reload()

    def _stamp(self) -> tuple[float, ...]:
        active = self.directory / "active"
        return (self.directory.stat().st_mtime, active.stat().st_mtime if active.exists() else 0.0)

    def refresh_if_changed(self) -> None:
        """Cheap check (two stats) so an added, activated or retired key takes effect live."""
        if self._stamp() != self._loaded_stamp:
            self.reload()

    def reload(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = {p.stem: _load(p) for p in sorted(self.directory.glob("*.pem"))}
        if not keys:
            if not self.generate_if_empty:
                raise RuntimeError(f"no signing keys in {self.directory}")
            key = add_key(self.directory, activate=True)
            keys = {key.kid: key.private}
        active_file = self.directory / "active"
        # Without an `active` file the oldest key signs: a freshly added key is only published.
        active = active_file.read_text().strip() if active_file.exists() else sorted(keys)[0]
        if active not in keys:
            raise RuntimeError(f"active key {active!r} has no PEM file")
        self.keys = {kid: SigningKey(kid, k) for kid, k in keys.items()}
        self.active = self.keys[active]
        self._loaded_stamp = self._stamp()

    def jwks(self) -> list[dict[str, str]]:
        return [k.jwk() for k in self.keys.values()]


def _load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"{path} is not an Ed25519 key")
    return key


def add_key(directory: Path, *, activate: bool) -> SigningKey:
    """Create a new key: published at once, the signer only when activated."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(4)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    if activate:
        (directory / "active").write_text(kid + "\n")
    return SigningKey(kid, private)
