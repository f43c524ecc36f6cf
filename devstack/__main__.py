"""`make run`: start everything locally, print where to go, stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from devstack.stack import ROOT, Stack, StackConfig


def main() -> int:
    base_dir = Path(os.environ.get("TRADESENSE_DATA", ROOT / ".data"))
    database_url = os.environ.get("DATABASE_URL") or None
    if os.environ.get("TRADESENSE_FREE_PORTS"):  # tests: never collide with a running suite
        cfg = StackConfig.ephemeral(base_dir, database_url=database_url)
        cfg.durable = True
    else:
        cfg = StackConfig(base_dir=base_dir, database_url=database_url)
        cfg.gateway_port = int(os.environ.get("GATEWAY_PORT", cfg.gateway_port))
    # Loopback unless asked: a laptop on a café network must not serve the API to it.
    cfg.gateway_host = os.environ.get("GATEWAY_HOST", cfg.gateway_host)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = Stack(cfg, progress=lambda m: print(f"  {m}", flush=True))
    print("TradeSense: starting the suite", flush=True)
    t0 = time.monotonic()
    try:
        stack.start()
    except Exception as exc:
        print(f"\nstart-up failed: {exc}", file=sys.stderr)
        return 1
    url = stack.gateway_url.replace("127.0.0.1", "localhost")
    accelerated = ""
    per_bar = float(os.environ.get("MARKET_REPLAY_SECONDS_PER_BAR") or 0)
    if os.environ.get("MARKET_REPLAY", "").lower() in ("1", "true", "yes") and per_bar:
        accelerated = (
            f"\n  !! market   replay ACCELERATED: a recorded bar every {per_bar:g} s (MARKET_REPLAY_SECONDS_PER_BAR)"
        )
    print(
        f"""
TradeSense is up in {time.monotonic() - t0:.1f}s.{accelerated}
  console   {url}/         (open it in a browser; operators log in as below)
  gateway   {url}/api      (REST/JSON and SSE)
  health    {url}/health
  envoy     http://localhost:{cfg.admin_port}   (Envoy admin, loopback only)
  gRPC      auth :{cfg.grpc_ports["auth"]}  challenges :{cfg.grpc_ports["challenges"]}  market :{cfg.grpc_ports["market"]}  risk :{cfg.grpc_ports["risk"]}
  metrics   :{cfg.metrics_ports["auth"]} :{cfg.metrics_ports["challenges"]} :{cfg.metrics_ports["market"]} :{cfg.metrics_ports["risk"]}  (/metrics)
  logs      {stack.logs}/
  login     {stack.admin_email} / password in {cfg.base_dir / "admin-password"}

Try:
  curl -s {url}/api/market/symbols | head -c 400; echo
  curl -s -X POST {url}/api/auth/register -H 'content-type: application/json' \\
       -d '{{"email":"trader@example.com","password":"correct-horse-42"}}'
  curl -sN '{url}/api/market/stream?symbols=EURUSD,BTCUSD'

Ctrl-C stops everything.""",  # noqa: E501
        flush=True,
    )
    while not stop.wait(1.0):
        dead = stack.dead()
        if dead:
            print(f"\nprocess exited unexpectedly: {', '.join(dead)} (see {stack.logs}/)", file=sys.stderr)
            break
    print("\nstopping...", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0 if stop.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
