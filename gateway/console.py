"""The browser console's files (web/), served by Envoy itself on the API's own origin.

Each file is a direct response read when Envoy loads its config (no file server, no other
process); `/` is the console's page. Every one carries the console's security headers: a
Content-Security-Policy with no inline script or style (`'self'` only), no framing, no
referrer, no MIME sniffing. The console routes by URL fragment (#/login, #/c/<id>), so these
paths are all there is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEB = Path(__file__).resolve().parents[1] / "web"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
# Envoy's limit on a direct response's body (4 KiB by default): the chart library is ~200 KB.
MAX_BODY = 1 << 20


def files(root: Path = WEB) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TYPES and "node_modules" not in p.parts)


def _headers(path: Path) -> list[dict[str, Any]]:
    values = {
        **SECURITY_HEADERS,
        "content-type": TYPES[path.suffix],
        # The page revalidates, so a new console is picked up at once; its files are small.
        "cache-control": "no-cache",
    }
    overwrite = "OVERWRITE_IF_EXISTS_OR_ADD"
    return [{"header": {"key": k, "value": v}, "append_action": overwrite} for k, v in values.items()]


def routes(root: Path, served_from: Path | None = None) -> list[dict[str, Any]]:
    """GET routes for every console file under `root`; `served_from` is where Envoy finds them
    (the gateway image's copy; default: `root` itself)."""
    base = served_from or root
    out = []
    for path in files(root):
        rel = path.relative_to(root).as_posix()
        for url in ["/", "/index.html"] if rel == "index.html" else [f"/{rel}"]:
            out.append(
                {
                    "match": {"path": url, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                    "direct_response": {"status": 200, "body": {"filename": str(base / rel)}},
                    "response_headers_to_add": _headers(path),
                }
            )
    return out
