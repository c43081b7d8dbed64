"""`tradertape serve`: the API (plus, in the embedded default, projectors) in one process."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from api.app import create_app
from infra.settings import Settings


def serve(args: argparse.Namespace) -> None:
    settings = Settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings, run_projector=False if args.no_projector else None)
    print(f"TraderTape API on http://{settings.host}:{settings.port}  (docs: /api/docs)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False)
