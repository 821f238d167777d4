#!/usr/bin/env bash
# Try ticketbooth as an SMTP smarthost in a minute, on this machine only (docs/try-smarthost.md):
#   swaks -> legacy Postfix (examples/mta/postfix-main.cf: relayhost = ticketbooth, no TLS)
#         -> ticketbooth (type: smtp, STARTTLS with single-use TLS 1.3 tickets, verified by a throwaway CA)
#         -> destination Postfix (STARTTLS, TLS 1.3 only, logging whether it resumed each session).
# The verdicts printed are the destination's own log lines, then ticketbooth's audit report.
# Needs: root (Postfix's master runs as root), postfix, swaks, openssl, and `npm ci` in this clone.
# Everything lives in one temp dir on 127.0.0.1 and is stopped at exit. Run from anywhere:
#   examples/try-smarthost.sh
#   MESSAGES=8 REUSE=adaptive KEEP=1 examples/try-smarthost.sh
#   (more messages; cache.reuse: never | adaptive; keep the work dir's logs once all is stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${MESSAGES:-4}"
reuse="${REUSE:-never}"

for tool in postfix swaks openssl script node; do
  command -v "$tool" >/dev/null || { echo "try-smarthost: '$tool' is not installed (apt-get install postfix swaks openssl)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "try-smarthost: Postfix's master process runs only as root: run this as root (in a container or VM)" >&2; exit 2; }
# The source as cloned, through tsx (installed by npm ci); a built dist/ when tsx is absent.
if [ -e node_modules/tsx ]; then tb=(node --import tsx src/cli.ts); else tb=(node dist/src/cli.js); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/try-smarthost.XXXXXX")"
chmod 755 "$work" # Postfix's daemons (user postfix) walk into it
tb_pid=""
postfixes=()
# running PID: true while PID is a process that has not exited (an unreaped zombie has).
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
cleanup() {
  local masters=() dir
  for dir in "${postfixes[@]}"; do
    masters+=("$(tr -d ' ' <"$dir/queue/pid/master.pid" 2>/dev/null || true)")
    postfix -c "$dir/etc" stop >/dev/null 2>&1 &
  done
  if [ -n "$tb_pid" ]; then kill "$tb_pid" 2>/dev/null || true; fi
  wait || true # for the postfix stops and ticketbooth
  # `postfix stop` returns once the master let go of its lock, which may be before it has exited;
  # its daemons run in their queue directory, so none may be left in ours either.
  for _ in $(seq 100); do
    local left=0 pid
    for pid in "${masters[@]}"; do [ -n "$pid" ] && running "$pid" && left=1; done
    for pid in /proc/[0-9]*; do [[ "$(readlink "$pid/cwd" 2>/dev/null)" == "$work"* ]] && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $work (logs, configs, audit log)"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
# wait_for FILE REGEX [COUNT] [SECONDS]: until FILE has COUNT lines matching REGEX.
wait_for() {
  local n="${3:-1}" tries=$((${4:-30} * 10))
  for _ in $(seq "$tries"); do
    [ "$(grep -cE "$2" "$1" 2>/dev/null || true)" -ge "$n" ] && return 0
    sleep 0.1
  done
  echo "try-smarthost: timed out waiting for $n x '$2' in $1" >&2
  tail -n 30 "$1" >&2 || true
  return 1
}

# start_postfix NAME SMTPD_ADDRESS MAIN_CF_LINES: a private Postfix instance under $work/NAME
# (docs/try-smarthost.md: its own config, queue and log; Debian's master.cf without chroot and
# without the port-25 smtpd, plus one smtpd on SMTPD_ADDRESS).
start_postfix() {
  local dir="$work/$1"
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  chown postfix:postfix "$dir/data"
  cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
syslog_name = postfix-$1
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
biff = no
$3
EOF
  awk -v smtpd="$2" '
    /^smtp[ \t]+inet[ \t]/ { next }
    /^[a-z]/ && NF >= 8 { $5 = "n" }
    { print }
    END { print smtpd " inet n - n - - smtpd" }' /etc/postfix/master.cf >"$dir/etc/master.cf"
  postfixes+=("$dir")
  # `postfix start` creates the queue's subdirectories itself (post-install create-missing), and
  # explains a failure only on a terminal: `script` gives it one.
  script -qc "postfix -c $dir/etc start" /dev/null >"$dir/start.out" 2>&1 || { cat "$dir/start.out" >&2; return 1; }
  wait_for "$dir/maillog" 'daemon started'
}

# 1. A throwaway CA and the destination's certificate for "localhost", signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=try-smarthost CA" \
  -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/dest-key.pem" -out "$work/dest.csr" 2>/dev/null
openssl x509 -req -in "$work/dest.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=DNS:localhost\n') -out "$work/dest-cert.pem" 2>/dev/null
chmod 644 "$work/dest-key.pem" # read by smtpd as user postfix; a throwaway key in a throwaway dir

dest_port="$(free_port)"

# 2. ticketbooth: a smarthost that relays to the destination and verifies it with the throwaway CA.
# Its connection cache keeps an idle upstream connection for idleSeconds (default 5) for the next
# message: messages closer together than that ride one TLS connection and need no handshake at all.
# Here it lets go after 1 s, and each message waits for that, so every message needs a handshake.
cat >"$work/ticketbooth.yaml" <<EOF
listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.try-smarthost.test
    route: { mode: relay, host: localhost, port: $dest_port }
    tls: { level: secure, ca: $work/ca.pem }
    connectionCache: { idleSeconds: 1 }
cache: { reuse: $reuse }
audit: { file: $work/audit.jsonl }
EOF
"${tb[@]}" serve --config "$work/ticketbooth.yaml" 2>"$work/ticketbooth.log" &
tb_pid=$!

# 3. The destination, while ticketbooth starts: STARTTLS with TLS 1.3 only; `summary, cache` logs,
# per connection, whether the client's ticket resumed the session ("Reusing old session").
# Mail for dest.test is discarded.
start_postfix dest "127.0.0.1:$dest_port" "myhostname = mx.dest.test
relay_domains = dest.test
relay_transport = discard:delivered (try-smarthost)
smtpd_tls_security_level = may
smtpd_tls_cert_file = $work/dest-cert.pem
smtpd_tls_key_file = $work/dest-key.pem
smtpd_tls_protocols = >=TLSv1.3
smtpd_tls_loglevel = summary, cache"

wait_for "$work/ticketbooth.log" 'smarthost listening on'
tb_port="$(sed -n 's/.*smarthost listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/ticketbooth.log")"

# 4. The legacy MTA: a Postfix with examples/mta/postfix-main.cf, relaying everything to ticketbooth.
legacy_port="$(free_port)"
start_postfix legacy "127.0.0.1:$legacy_port" "myhostname = legacy.try-smarthost.test
$(sed "s/{{TICKETBOOTH_PORT}}/$tb_port/" examples/mta/postfix-main.cf)"

dest_master="$(tr -d ' ' <"$work/dest/queue/pid/master.pid")"
legacy_master="$(tr -d ' ' <"$work/legacy/queue/pid/master.pid")"
echo "destination: Postfix on 127.0.0.1:$dest_port (TLS 1.3 only)"
echo "ticketbooth: smarthost on 127.0.0.1:$tb_port, relaying to localhost:$dest_port"
echo "legacy MTA:  Postfix on 127.0.0.1:$legacy_port, relayhost = [127.0.0.1]:$tb_port"
echo "pids: ticketbooth $tb_pid, destination master $dest_master, legacy master $legacy_master; work dir $work"

# 5. The messages, one at a time. Each waits until ticketbooth's connection cache has closed the
# previous upstream connection (the destination logs "disconnect from"), so each needs a handshake.
echo
echo "sending $messages messages, each after ticketbooth's cached connection to the destination closed"
echo "(1 s idle here; a burst closer than the cache's idleSeconds rides one connection: no handshake, so nothing to resume)"
for i in $(seq "$messages"); do
  swaks --server 127.0.0.1 --port "$legacy_port" --from sender@legacy.test --to "user$i@dest.test" \
    --header "Subject: try-smarthost $i" --body "message $i" >"$work/swaks-$i.log" 2>&1 ||
    { cat "$work/swaks-$i.log" >&2; exit 1; }
  wait_for "$work/dest/maillog" 'status=sent \(delivered' "$i"
  wait_for "$work/dest/maillog" 'smtpd\[[0-9]+\]: disconnect from' "$i"
  echo "message $i: delivered"
done

# 6. The destination's verdicts: per connection, its TLS summary line, and whether it resumed.
echo
echo "the destination's log (smtpd_tls_loglevel = summary, cache):"
awk '
  # Lines of one connection share the smtpd process id; a process serves one connection at a time.
  { pid = match($0, /smtpd\[[0-9]+\]: /) ? substr($0, RSTART, RLENGTH) : ""; text = substr($0, RSTART + RLENGTH) }
  pid == "" { next }
  text ~ /^connect from/ { reused[pid] = 0 }
  text ~ /Reusing old session/ { reused[pid] = 1; print "  " text }
  text ~ /Issuing session ticket/ { print "  " text }
  text ~ /TLS connection established from/ {
    print "  " text
    print "  => " (reused[pid] ? "resumed" : "new session (full handshake)")
  }' "$work/dest/maillog"
resumed="$(grep -c 'Reusing old session' "$work/dest/maillog" || true)"
total="$(grep -c 'TLS connection established from' "$work/dest/maillog" || true)"
echo "the destination resumed $resumed of $total TLS sessions"
if [ "$reuse" = never ]; then
  echo "(Postfix issues one ticket per full TLS 1.3 handshake and none on a resumed one, and ticketbooth"
  echo " offers each ticket once (RFC 8446 C.4): every other connection resumes. REUSE=adaptive lets"
  echo " ticketbooth offer a spent ticket again to a destination seen to accept that: then all but the first.)"
fi

# 7. ticketbooth's side: its audit log has a line per handshake, written as each connection closes.
echo
wait_for "$work/audit.jsonl" '"tls.handshake"' "$total"
"${tb[@]}" audit "$work/audit.jsonl"
echo
echo "done in ${SECONDS} s; stopping everything"
