"""Signing-key rotation: `python -m services.auth.keys {list,add,activate,retire}`.

Procedure (documented in docs/auth.md): `add` publishes a new key in the JWKS without
signing with it; after the gateway's JWKS cache (60 s) has picked it up, `activate`
makes it the signer; once every token it signed has expired (access TTL), `retire`
the old key. Services refetch the JWKS on an unknown kid, so they need no step.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from services.auth import keyring


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.auth.keys")
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("AUTH_KEYS_DIR", ".data/auth-keys")))
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    sub.add_parser("add")
    sub.add_parser("activate").add_argument("kid")
    sub.add_parser("retire").add_argument("kid")
    args = parser.parse_args(argv)
    ring = keyring.KeyRing(args.dir, generate_if_empty=False) if args.cmd != "add" else None
    if args.cmd == "list":
        assert ring is not None
        for kid in ring.keys:
            print(kid, "(active)" if kid == ring.active.kid else "")
    elif args.cmd == "add":
        print(keyring.add_key(args.dir, activate=False).kid)
    elif args.cmd == "activate":
        assert ring is not None
        if args.kid not in ring.keys:
            print(f"no key {args.kid}", file=sys.stderr)
            return 2
        (args.dir / "active").write_text(args.kid + "\n")
    elif args.cmd == "retire":
        assert ring is not None
        if args.kid == ring.active.kid:
            print("refusing to retire the active key; activate another first", file=sys.stderr)
            return 2
        (args.dir / f"{args.kid}.pem").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
