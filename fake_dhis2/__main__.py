"""`fake-dhis2`: a fake DHIS2 on loopback for demos, optionally set up with the mediator's metadata."""

from __future__ import annotations

import argparse
import json
import logging

from fake_dhis2.app import FakeDhis2
from fake_dhis2.server import RunningFake
from fake_dhis2.store import import_metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fake-dhis2", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--version", default="2.40.3", help="DHIS2 version to behave as")
    parser.add_argument("--user", default="admin:district", help="username:password accepted by Basic auth")
    parser.add_argument("--metadata", action="append", default=[], help="metadata JSON file(s) to load first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    user, _, password = args.user.partition(":")
    fake = FakeDhis2(version=args.version, users={user: password})
    for path in args.metadata:
        with open(path, encoding="utf-8") as fh:
            report = import_metadata(fake.store, json.load(fh), "CREATE_AND_UPDATE", "ALL")
        logging.getLogger("fake_dhis2").info("loaded %s: %s %s", path, report["status"], report["stats"])
    running = RunningFake(fake, args.host, args.port)
    logging.getLogger("fake_dhis2").info("fake DHIS2 %s listening on %s", args.version, running.url)
    running.server.serve_forever()


if __name__ == "__main__":
    main()
