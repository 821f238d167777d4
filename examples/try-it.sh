#!/usr/bin/env bash
# Try ticketbooth in two minutes, on this machine only: a local TLS 1.3 server (openssl s_server
# -www, which tells each client whether its session was resumed), a ticketbooth tunnel in front of
# it, five plain-HTTP requests through the tunnel, and the audit report of what happened.
# Needs: a built clone (npm ci && npm run build), openssl, curl. Run from the clone: examples/try-it.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
wait_for() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1; }

# 1. A certificate for "localhost" and the server (TLS 1.3; it issues 2 tickets per full handshake).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
server_port="$(free_port)"
openssl s_server -accept "127.0.0.1:$server_port" -cert "$work/cert.pem" -key "$work/key.pem" -tls1_3 -www \
  >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" ACCEPT

# 2. The tunnel: plaintext in on a local port, TLS out to the server, verified against its certificate.
node --max-semi-space-size=1 dist/src/cli.js tunnel --listen 127.0.0.1:0 --connect "127.0.0.1:$server_port" \
  --servername localhost --ca "$work/cert.pem" --audit-log "$work/audit.jsonl" 2>"$work/tunnel.log" &
pids+=($!)
wait_for "$work/tunnel.log" 'listening on'
tunnel_port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/tunnel.log")"
echo "server: openssl s_server on 127.0.0.1:$server_port; ticketbooth tunnel on 127.0.0.1:$tunnel_port"

# 3. Five requests, a new connection each; the server's own verdict is on its page ("New" or "Reused").
for i in 1 2 3 4 5; do
  verdict="$(curl -s --max-time 5 "http://127.0.0.1:$tunnel_port/" | grep -o -m1 -E '^(New|Reused), TLSv1\.3' || true)"
  echo "request $i: the server says: ${verdict:-no answer}"
done

# 4. The audit log has a line per handshake (written as each connection closes): the report.
wait_for "$work/audit.jsonl" '"tls.handshake"'
for _ in $(seq 50); do [ "$(grep -c '"tls.handshake"' "$work/audit.jsonl")" -ge 5 ] && break; sleep 0.1; done
node dist/src/cli.js audit "$work/audit.jsonl"
