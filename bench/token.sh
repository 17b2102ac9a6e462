#!/usr/bin/env bash
# Measures `latchkey token` with a valid cached token, as a whole process (exec to exit).
#
# The credentials point at a closed port, so the run also proves that a valid cached token
# touches no network: any request would fail the command, and hyperfine with it.
#
# Usage: bench/token.sh                 # builds target/release/latchkey first
#        LATCHKEY_BIN=path bench/token.sh
# Needs: hyperfine (https://github.com/sharkdp/hyperfine); jq (or python3) to print the median.
# bench/run runs it as its last measurement.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${LATCHKEY_BIN:-}"
[[ -z "$bin" || "$bin" == /* ]] || bin="$PWD/$bin"
if [[ -z "$bin" ]]; then
  (cd "$root" && cargo build --release --bin latchkey >&2)
  bin="$root/target/release/latchkey"
fi

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -m 700 "$dir/config" "$dir/work"
now="$(date +%s)"
cat > "$dir/config/credentials.json" <<JSON
{
  "version": 1,
  "mode": "oauth",
  "issuer": "http://127.0.0.1:9",
  "client_id": "latchkey-cli",
  "token_endpoint": "http://127.0.0.1:9/oauth/token",
  "api_url": "http://127.0.0.1:9",
  "token_type": "Bearer",
  "access_token": "bench-access-token",
  "refresh_token": "lkr_bench",
  "expires_at": $((now + 3600)),
  "created_at": $now
}
JSON
chmod 600 "$dir/config/credentials.json"
printf 'cloud:\n  url: http://127.0.0.1:9\n' > "$dir/config/config.yaml"

export LATCHKEY_CONFIG_DIR="$dir/config"
cd "$dir/work"
out="$("$bin" token)"
[[ "$out" == "bench-access-token" ]] || { echo "unexpected output: $out" >&2; exit 1; }

hyperfine --warmup 5 -N --runs "${RUNS:-200}" --export-json "$dir/result.json" "$bin token"
if command -v jq >/dev/null; then
  jq -r '.results[0] | "median: \(.median * 1000 * 100 | round / 100) ms  (mean \(.mean * 1000 * 100 | round / 100) ms, min \(.min * 1000 * 100 | round / 100) ms, max \(.max * 1000 * 100 | round / 100) ms, \(.times | length) runs)"' "$dir/result.json"
elif command -v python3 >/dev/null; then
  python3 - "$dir/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"median: {r['median'] * 1000:.2f} ms  (mean {r['mean'] * 1000:.2f} ms, "
      f"min {r['min'] * 1000:.2f} ms, max {r['max'] * 1000:.2f} ms, {len(r['times'])} runs)")
PY
fi
