#!/bin/bash
# The rehearsal's web service: files of a site's directory over HTTP (python -m http.server).
#
#   service.sh start NAME ADDRESS PORT DIRECTORY    # idempotent: a running one is kept
#   service.sh stop NAME                            # idempotent: a stopped one stays stopped
#
# Run it inside the site's namespace (the runbooks do: they run there). The PID file is
# $TWO_SITE_DIR/run/http-NAME.pid.
set -euo pipefail

DIR=${TWO_SITE_DIR:-$(cd "$(dirname "$0")" && pwd)/sites}
PYTHON=${PYTHON:-python3}
pidfile="$DIR/run/http-$2.pid"
mkdir -p "$DIR/run"

case "$1" in
  start)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2> /dev/null; then
      echo "http-$2 already running (pid $(cat "$pidfile"))"
      exit 0
    fi
    setsid "$PYTHON" -m http.server "$4" --bind "$3" --directory "$5" \
      > "$DIR/run/http-$2.log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    echo "http-$2 serving $5 on http://$3:$4/ (pid $!)"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill -TERM -- "-$pid" 2> /dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2> /dev/null || true
      rm -f "$pidfile"
    fi
    echo "http-$2 stopped"
    ;;
  *) echo "usage: $0 start NAME ADDRESS PORT DIRECTORY | stop NAME" >&2; exit 2 ;;
esac
