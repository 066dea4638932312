"""RFC 2136 dynamic updates for runbooks: BIND, Knot, PowerDNS, Windows DNS.

    dns: {provider: rfc2136, server: "ns1.example.com:53", zone: example.com., record: www,
          value: "{{ outputs.vm.ip }}", ttl: 60, tsig: file:/etc/drorch/dr.key}

Each step names the primary (authoritative, updatable) server and a TSIG key
*by reference*: ``file:PATH`` (a BIND key file as ``tsig-keygen`` writes it:
``key "NAME" { algorithm hmac-sha256; secret "BASE64"; };``) or ``env:NAME``
(the variable holds ``[ALGORITHM:]KEYNAME:SECRET``, the form of ``nsupdate
-y``; the algorithm defaults to hmac-sha256). The key is read when the step
runs and lives only in memory: never in the runbook, the journal or a message.

- ``current`` asks the server itself (over TCP, TSIG-signed) for the record set;
  NXDOMAIN or no data is "absent".
- ``apply`` sends one UPDATE: the record set is *replaced* (delete the RRset,
  add the new values, in one atomic message), so running it twice is harmless;
  empty values delete the record set. An update the server refuses (NOTAUTH,
  REFUSED: bad key, or no ``allow-update`` for it) is permanent.
- ``wait_in_sync`` queries the server until it answers with the new values.
- ``zone_check`` asks for the zone's SOA: proof the server answers for it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import RecordChange

__all__ = ["Rfc2136Dns", "TsigKey", "load_tsig", "open_dns", "parse_server"]

_QUERY_TIMEOUT_S = 5.0
_POLL_S = 0.5
_KEY_FILE = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.S)
_KEY_FIELD = re.compile(r'(algorithm|secret)\s+"?([^";\s]+)"?\s*;')


def open_dns(**_: Any) -> Rfc2136Dns:
    return Rfc2136Dns()


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key as read from its reference; ``secret`` never appears in a repr."""

    name: str
    algorithm: str
    secret: str = field(repr=False)

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        name = dns.name.from_text(self.name)
        try:
            return {name: dns.tsig.Key(name, self.secret, dns.name.from_text(self.algorithm))}
        except (ValueError, TypeError) as err:  # bad base64 never echoes the secret
            raise StepFailed(f"TSIG key {self.name} has a secret that is not valid base64 "
                             f"({type(err).__name__})", permanent=True) from None


def load_tsig(ref: str) -> TsigKey:
    """The key behind ``file:PATH`` or ``env:NAME`` (module docstring); StepFailed if unusable."""
    kind, _, where = ref.partition(":")
    if kind == "file":
        try:
            text = Path(where).read_text(encoding="utf-8")
        except OSError as err:
            raise StepFailed(f"TSIG key file {where} cannot be read: {err.strerror or err}",
                             permanent=True,
                             hint="write it with tsig-keygen (mode 0600) or fix the step's tsig") from None
        found = _KEY_FILE.search(text)
        fields = dict(_KEY_FIELD.findall(found.group(2))) if found else {}
        if found is None or "secret" not in fields:
            raise StepFailed(f"TSIG key file {where} holds no key {{ algorithm ...; secret ...; }} clause",
                             permanent=True, hint="write it with tsig-keygen NAME > FILE")
        return TsigKey(found.group(1), fields.get("algorithm", "hmac-sha256"), fields["secret"])
    if kind == "env":
        value = os.environ.get(where, "")
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            state = "is not set" if not value else "is not [ALGORITHM:]KEYNAME:SECRET"
            raise StepFailed(f"TSIG key variable {where} {state}", permanent=True,
                             hint=f"export {where}=hmac-sha256:KEYNAME:BASE64SECRET")
        algorithm = parts[0] if len(parts) == 3 else "hmac-sha256"
        return TsigKey(parts[-2], algorithm, parts[-1])
    raise StepFailed(f"TSIG key reference must be file:PATH or env:NAME, got '{kind}:'", permanent=True)


def parse_server(server: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` -> (host, port); port 53 by default."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    else:
        host, port = server, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid DNS server '{server}'; use host or host:port, e.g. 127.0.0.1:53")
    return host, int(port)


class Rfc2136Dns:
    """One adapter for every server: each ``RecordChange`` names its server and key."""

    def __init__(self) -> None:
        self._pending: dict[str, RecordChange] = {}
        self._keys: dict[str, TsigKey] = {}

    def _key(self, change: RecordChange) -> TsigKey | None:
        if change.tsig is None:
            return None
        if change.tsig not in self._keys:
            self._keys[change.tsig] = load_tsig(change.tsig)
        return self._keys[change.tsig]

    def _send(self, message: dns.message.Message, change: RecordChange, doing: str,
              timeout: float) -> dns.message.Message:
        if change.server is None:
            raise StepFailed("an rfc2136 dns step needs server: HOST[:PORT]", permanent=True)
        host, port = parse_server(change.server)
        where = f"DNS server {change.server}"
        try:
            reply = dns.query.tcp(message, host, port=port, timeout=timeout)
        except dns.exception.Timeout:
            raise StepFailed(f"{where} did not answer in {timeout:.0f}s while trying to {doing}",
                             hint="check the server address and that it listens on TCP") from None
        except OSError as err:
            raise StepFailed(f"cannot reach {where} to {doing} ({err.strerror or err})",
                             hint="check the server address and port") from None
        except dns.tsig.PeerError as err:
            raise StepFailed(f"{where} rejected the TSIG key while trying to {doing} "
                             f"({type(err).__name__})", permanent=True,
                             hint="the key name, algorithm and secret must match the server's") from None
        except dns.exception.DNSException as err:
            raise StepFailed(f"{where} answered badly while trying to {doing} ({type(err).__name__})") \
                from None
        return reply

    def _signed(self, message: dns.message.Message, change: RecordChange) -> dns.message.Message:
        key = self._key(change)
        if key is not None:
            message.use_tsig(key.keyring(), keyname=dns.name.from_text(key.name))
        return message

    def current(self, change: RecordChange) -> tuple[str, ...]:
        return self._read(change, _QUERY_TIMEOUT_S)

    def _read(self, change: RecordChange, timeout: float) -> tuple[str, ...]:
        query = self._signed(dns.message.make_query(change.name, change.type), change)
        reply = self._send(query, change, f"read {change.type} {change.name}", timeout)
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return ()
        if rcode != dns.rcode.NOERROR:
            raise StepFailed(f"DNS server {change.server} answered {dns.rcode.to_text(rcode)} for "
                             f"{change.type} {change.name}", permanent=rcode == dns.rcode.REFUSED)
        rrtype = dns.rdatatype.from_text(change.type)
        name = dns.name.from_text(change.name)
        values = [rdata.to_text() for rrset in reply.answer if rrset.name == name and rrset.rdtype == rrtype
                  for rdata in rrset]
        return tuple(sorted(values))

    def apply(self, change: RecordChange, deadline: Deadline) -> str:
        key = self._key(change)
        update = dns.update.UpdateMessage(change.zone, keyring=key.keyring() if key else None,
                                          keyname=dns.name.from_text(key.name) if key else None)
        if change.values:
            update.replace(change.name, change.ttl, change.type, *change.values)
        else:
            update.delete(change.name, change.type)
        doing = f"{'update' if change.values else 'delete'} {change.type} {change.name}"
        reply = self._send(update, change, doing, deadline.bounded(_QUERY_TIMEOUT_S))
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            refused = rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NOTZONE)
            hint = ("the zone must allow updates by this TSIG key (BIND: allow-update { key NAME; };) "
                    "and the record must lie inside zone " + change.zone) if refused else None
            raise StepFailed(f"DNS server {change.server} refused to {doing}: {dns.rcode.to_text(rcode)}",
                             permanent=refused, hint=hint)
        change_id = f"rfc2136-{change.name}-{time.time_ns()}"
        self._pending[change_id] = change
        return change_id

    def wait_in_sync(self, change_id: str, deadline: Deadline) -> None:
        change = self._pending.pop(change_id, None)
        if change is None:
            return
        want = tuple(sorted(_canonical(change.type, v) for v in change.values))
        while True:
            seen = self._read(change, deadline.bounded(_QUERY_TIMEOUT_S))
            if seen == want:
                return
            deadline.sleep(_POLL_S)
            deadline.check(f"waiting for {change.server} to answer {change.name} with "
                           f"{','.join(want) or 'nothing'} (it answers {','.join(seen) or 'nothing'})")

    def zone_check(self, change: RecordChange, timeout: float) -> str:
        """Ask for the zone's SOA; returns "SOA serial N" or raises StepFailed."""
        query = self._signed(dns.message.make_query(change.zone, "SOA"), change)
        reply = self._send(query, change, f"read the SOA of {change.zone}", timeout)
        soa = [r for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SOA for r in rrset]
        if reply.rcode() != dns.rcode.NOERROR or not soa:
            raise StepFailed(f"DNS server {change.server} is not authoritative for zone {change.zone} "
                             f"({dns.rcode.to_text(reply.rcode())}, no SOA)", permanent=True,
                             hint="check the dns step's zone and server")
        return f"SOA serial {soa[0].serial}"  # type: ignore[attr-defined]


def _canonical(rdtype: str, value: str) -> str:
    """A value as the server writes it back (CNAME targets and TXT strings normalized)."""
    try:
        return str(dns.rdata.from_text(dns.rdataclass.IN, rdtype, value).to_text())
    except dns.exception.DNSException:
        return value
