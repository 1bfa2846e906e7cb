#!/bin/sh
# make bench: build the core and the load tool, then run the whole
# benchmark (scripts/load, `load bench`) on loopback, bounded to 14 minutes.
# Extra arguments go to `load bench` (e.g. -quick, -modes separate, -out f).
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BENCH_BIN:-bin/bench}
mkdir -p "$BIN"
BIN=$(cd "$BIN" && pwd)

echo "== build into $BIN" >&2
for cmd in node-gateway api ws-proxy honeybee; do
	dir=services/$cmd/cmd/$cmd
	if [ -d "$dir" ]; then
		CGO_ENABLED=0 $GO build -o "$BIN/$cmd" "./$dir"
	else
		echo "warning: $dir does not exist; modes that need $cmd will report it" >&2
	fi
done
# The NATS server of the separate mode, built from the module version
# pinned in scripts/load/go.mod (the same as the services use).
(cd scripts/load && CGO_ENABLED=0 $GO build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2 \
	&& CGO_ENABLED=0 $GO build -o "$BIN/load" .)

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$BIN/load" bench -bin "$BIN" "$@"
