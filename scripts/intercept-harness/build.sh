#!/bin/sh
# Build the Intercept gateway harness used by scripts/intercept_fidelity.py.
#
#   scripts/intercept-harness/build.sh INTERCEPT_CHECKOUT OUT_BINARY
#
# INTERCEPT_CHECKOUT is a checkout of github.com/PolicyLayer/Intercept. The script copies the
# packages the harness drives (config, engine, conv, state, proxy, events, transport) into a
# scratch module outside both trees and builds against them with no network:
# gopkg.in/yaml.v3 and github.com/mattn/go-sqlite3 come from Debian's packages
# (golang-gopkg-yaml.v3-dev, golang-github-mattn-go-sqlite3-dev). For a Go older than the
# gateway's (Debian 12 has Go 1.19) three adaptations are made to the copy, none of which
# touches a decision: log/slog becomes a no-op logger, the SQLite store opens its database
# through mattn/go-sqlite3 instead of modernc.org/sqlite (same SQL), and the Redis store and
# transports are left out.
set -eu
src=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/internal" "$work/cmd/harness" "$work/internal/slog"
for p in config engine conv state proxy events transport; do
    cp -r "$src/internal/$p" "$work/internal/"
done
find "$work" -name '*_test.go' -delete
rm -f "$work/internal/state/redis.go"
for f in http.go sse.go stdio.go stdio_bridge.go process_unix.go process_windows.go shared.go; do
    rm -f "$work/internal/transport/$f"
done
cp "$here/slog.go.txt" "$work/internal/slog/slog.go"
cp "$here/transport_export.go.txt" "$work/internal/transport/harness_export.go"
cp "$here/main.go" "$work/cmd/harness/main.go"
grep -rl '"log/slog"' "$work/internal" | xargs sed -i 's#"log/slog"#"github.com/policylayer/intercept/internal/slog"#'
sed -i 's#_ "modernc.org/sqlite"#_ "github.com/mattn/go-sqlite3"#; s#sql.Open("sqlite", dsn)#sql.Open("sqlite3", dsn)#' \
    "$work/internal/state/sqlite.go"
python3 - "$work/internal/state/factory.go" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('if after, ok := strings.CutPrefix(path, statePrefix); ok {',
              'if strings.HasPrefix(path, statePrefix) {\n\t\tafter := strings.TrimPrefix(path, statePrefix)')
start = s.index('\tif dsn != "" {')
end = s.index('\t} else {', start)
s = s[:start] + '\tif dsn != "" {\n\t\treturn nil, fmt.Errorf("redis not built")\n' + s[end:]
open(p, 'w').write(s)
PY
cat > "$work/go.mod" <<'MOD'
module github.com/policylayer/intercept

go 1.19

require (
	github.com/mattn/go-sqlite3 v1.14.16
	gopkg.in/yaml.v3 v3.0.1
)

replace github.com/mattn/go-sqlite3 => /usr/share/gocode/src/github.com/mattn/go-sqlite3

replace gopkg.in/yaml.v3 => /usr/share/gocode/src/gopkg.in/yaml.v3
MOD
cd "$work"
GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local go build -o "$out" ./cmd/harness
echo "built $out"
