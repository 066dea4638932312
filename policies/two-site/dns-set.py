#!/usr/bin/env python3
"""Point a DNS record at an address with an RFC 2136 dynamic update signed by a TSIG key.

    dns-set.py --server 10.200.0.1 --zone two-site.test. --record www --key-file key.conf --value IP
    dns-set.py ... --check IP     # exit 0 when the server answers IP for the record, else 1

The rehearsal's stand-in for a ``dns`` step with an RFC 2136 provider: it writes the
record's previous value to ``$DRORCH_OUTPUTS`` (``previous=...``) so an undo can put it
back. ``--key-file`` is a BIND key statement (what ``tsig-keygen`` prints). Needs dnspython.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update


def keyring(path: str) -> tuple[dict, str]:
    with open(path) as file:
        text = file.read()
    name = re.search(r'key\s+"?([^"\s]+)"?', text)
    secret = re.search(r'secret\s+"([^"]+)"', text)
    if not name or not secret:
        sys.exit(f"{path}: no key statement with a secret in it")
    return dns.tsigkeyring.from_text({name.group(1): secret.group(1)}), name.group(1)


def current(server: str, fqdn: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(fqdn, dns.rdatatype.A), server, timeout=3)
    return sorted(r.address for rrset in answer.answer for r in rrset if r.rdtype == dns.rdatatype.A)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--server", "--zone", "--record"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--key-file")
    parser.add_argument("--ttl", type=int, default=30)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--value")
    what.add_argument("--check")
    args = parser.parse_args()
    fqdn = f"{args.record}.{args.zone.rstrip('.')}."
    before = current(args.server, fqdn)
    if args.check is not None:
        print(f"{fqdn} A {','.join(before) or '(none)'}")
        return 0 if before == [args.check] else 1
    ring, key_name = keyring(args.key_file)
    update = dns.update.UpdateMessage(args.zone, keyring=ring, keyname=key_name,
                                      keyalgorithm="hmac-sha256")
    values = [v for v in args.value.split(",") if v]
    if values:
        update.replace(args.record, args.ttl, "A", *values)
    else:
        update.delete(args.record, "A")
    response = dns.query.tcp(update, args.server, timeout=5)
    if response.rcode() != 0:
        sys.exit(f"the update of {fqdn} was refused: {dns.rcode.to_text(response.rcode())}")
    print(f"{fqdn} A {','.join(before) or '(none)'} -> {args.value or '(none)'}")
    if os.environ.get("DRORCH_OUTPUTS"):
        with open(os.environ["DRORCH_OUTPUTS"], "a") as sink:
            sink.write(f"previous={','.join(before)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
