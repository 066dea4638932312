#!/bin/bash
# Three "hosts" on one Linux machine for the two-site rehearsal (policies/two-site.yaml):
# network namespaces PRIMARY, STANDBY and STORE. The store routes between the sites and
# serves, on 10.200.0.1, the object store (moto server, S3 API on :5000) and DNS (bind9 on
# :53, zone two-site.test., dynamic updates signed with a TSIG key).
#
#   sudo policies/two-site/netns.sh up       # namespaces and links
#   sudo policies/two-site/netns.sh store    # start moto + named in the store (needs python with moto)
#   sudo policies/two-site/netns.sh cut      # the primary's link goes down (the outage)
#   sudo policies/two-site/netns.sh heal     # and comes back
#   sudo policies/two-site/netns.sh down     # stop what `store` started, remove the namespaces
#
# Environment: TWO_SITE_PREFIX (namespace names, default two-site), TWO_SITE_DIR (state:
# data, pid files, DNS zone and key; default policies/two-site/sites, where the policy and
# runbooks expect it), PYTHON (with moto and boto3; default python3). Addresses: primary 10.200.1.2, standby 10.200.2.2, store
# 10.200.1.1 / 10.200.2.1 and the service address 10.200.0.1.
set -euo pipefail

PREFIX=${TWO_SITE_PREFIX:-two-site}
DIR=${TWO_SITE_DIR:-$(cd "$(dirname "$0")" && pwd)/sites}
PYTHON=${PYTHON:-python3}
PRIMARY=$PREFIX-primary STANDBY=$PREFIX-standby STORE=$PREFIX-store
SERVICE=10.200.0.1

up() {
  for ns in "$PRIMARY" "$STANDBY" "$STORE"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$STORE" addr add "$SERVICE/32" dev lo
  ip netns exec "$STORE" sysctl -qw net.ipv4.ip_forward=1
  link "$PRIMARY" vp 1
  link "$STANDBY" vs 2
  mkdir -p "$DIR/primary/www" "$DIR/standby/www" "$DIR/run"
}

link() {  # link NAMESPACE STORE-SIDE-IFNAME SUBNET: a veth from the store to the site's eth0
  local ns=$1 ifname=$2 net=$3
  ip -n "$STORE" link add "$ifname" type veth peer name eth0 netns "$ns"
  ip -n "$STORE" addr add "10.200.$net.1/24" dev "$ifname"
  ip -n "$ns" addr add "10.200.$net.2/24" dev eth0
  ip -n "$STORE" link set "$ifname" up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "10.200.$net.1"
}

store() {
  mkdir -p "$DIR/run" "$DIR/dns"
  start moto "$PYTHON" -m moto.server -H "$SERVICE" -p 5000
  [ -f "$DIR/dns/key.conf" ] || tsig-keygen -a hmac-sha256 two-site-key > "$DIR/dns/key.conf"
  cat > "$DIR/dns/two-site.test.zone" <<ZONE
\$TTL 60
@   IN SOA ns.two-site.test. admin.two-site.test. (1 60 60 600 60)
    IN NS  ns.two-site.test.
ns  IN A   $SERVICE
www IN A   10.200.1.2
ZONE
  rm -f "$DIR/dns/two-site.test.zone.jnl"
  cat > "$DIR/dns/named.conf" <<CONF
include "$DIR/dns/key.conf";
options { directory "$DIR/dns"; listen-on port 53 { $SERVICE; }; listen-on-v6 { none; };
          pid-file "$DIR/run/named.pid.internal"; recursion no; dnssec-validation no; };
zone "two-site.test." { type primary; file "$DIR/dns/two-site.test.zone";
                        allow-update { key two-site-key; }; };
CONF
  start named /usr/sbin/named -g -c "$DIR/dns/named.conf"
  wait_for "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://$SERVICE:5000/moto-api/')"
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing ip netns exec "$STORE" "$PYTHON" -c "
import boto3
boto3.client('s3', endpoint_url='http://$SERVICE:5000', region_name='us-east-1').create_bucket(Bucket='two-site')"
  wait_for "$PYTHON" -c "
import socket, sys
s = socket.create_connection(('$SERVICE', 53), 1)"
  echo "store up: S3 http://$SERVICE:5000 (bucket two-site), DNS $SERVICE:53 (key $DIR/dns/key.conf)"
}

start() {  # start NAME ARGV...: in the store namespace, in its own session, pid in DIR/run
  local name=$1; shift
  setsid ip netns exec "$STORE" "$@" > "$DIR/run/$name.log" 2>&1 < /dev/null &
  echo $! > "$DIR/run/$name.pid"
}

wait_for() {
  for _ in $(seq 100); do
    if ip netns exec "$STORE" "$@" 2> /dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the store did not come up; see $DIR/run/*.log" >&2
  exit 1
}

stop_all() {
  for pidfile in "$DIR"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null || true
    rm -f "$pidfile"
  done
}

down() {
  stop_all
  for ns in "$PRIMARY" "$STANDBY" "$STORE"; do
    ip netns del "$ns" 2> /dev/null || true
  done
}

case "${1:-}" in
  up) up ;;
  store) store ;;
  cut) ip -n "$STORE" link set vp down ;;
  heal) ip -n "$STORE" link set vp up ;;
  down) down ;;
  *) echo "usage: $0 up|store|cut|heal|down" >&2; exit 2 ;;
esac
