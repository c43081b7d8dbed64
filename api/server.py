"""`tradertape serve`: the API (plus, in the embedded default, projectors) in one process, or in
`--workers N` processes (each worker runs its own projector thread in the embedded default; their
tracking rows make that safe)."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from infra.config.settings import Settings

# Client IPs: the app believes X-Forwarded-For only from TRADERTAPE_TRUSTED_PROXIES (api/app.py), never
# uvicorn's default trust of 127.0.0.1. A WebSocket message is at most this large (a subscribe of 3000 symbols
# is ~50 KB).
WS_MAX_BYTES = 1024 * 1024


def app_factory() -> FastAPI:
    """Used by uvicorn workers: each builds its own app from the environment."""
    settings = Settings()
    no_projector = os.environ.get("TRADERTAPE_SERVE_NO_PROJECTOR") == "1"
    return create_app(settings, run_projector=False if no_projector else None, settle_heap=True)


def serve(args: argparse.Namespace) -> None:
    # --host/--port become the settings every worker reads: emailed links follow the listening address
    if args.host:
        os.environ["TRADERTAPE_HOST"] = args.host
    if args.port is not None:
        os.environ["TRADERTAPE_PORT"] = str(args.port)
    settings = Settings()
    host, port = settings.host, settings.port
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"TraderTape API on http://{host}:{port}  (docs: http://{host}:{port}/api/docs)\n"
          f"Links in emails point at {settings.public_base_url} "
          f"({'TRADERTAPE_BASE_URL' if settings.base_url else 'set TRADERTAPE_BASE_URL to change'})", flush=True)
    if args.no_projector:
        os.environ["TRADERTAPE_SERVE_NO_PROJECTOR"] = "1"
    workers = max(1, args.workers or 1)
    if workers > 1:
        uvicorn.run("api.server:app_factory", factory=True, host=host, port=port, workers=workers,
                    log_level=settings.log_level.lower(), access_log=False, ws_per_message_deflate=False,
                    proxy_headers=False, ws_max_size=WS_MAX_BYTES)
    else:
        # ticks: no per-message deflate (CPU per client per message; see docs/DESIGN.md)
        uvicorn.run(app_factory(), host=host, port=port, log_level=settings.log_level.lower(), access_log=False,
                    ws_per_message_deflate=False, proxy_headers=False, ws_max_size=WS_MAX_BYTES)
