#!/usr/bin/env bash
# The image's start without a container engine: the built CLI runs config/container.yaml (or $2) the
# way the Dockerfile runs it (its ENTRYPOINT + CMD, read from the Dockerfile, /app and /etc/ticketbooth
# mapped to folders here), as uid 1000 (the image's `node` user) without capabilities, on a read-only
# root file system, in a network namespace of its own. Then, from outside the namespace:
#   - the SMTP listener answers 220 on the namespace's non-loopback address (10.77.N.2),
#   - a client from an address outside the allow list (100.64.N.1) gets 554,
#   - /readyz answers 200 there (what a kubelet probe sees),
# inside it the Dockerfile's HEALTHCHECK command exits 0, and SIGTERM ends the service with exit 0.
#   scripts/container-smoke.sh RUNTIME_DIR [CONFIG]
# RUNTIME_DIR holds what the image's /app holds: package.json, production node_modules, dist/src.
# Needs root (ip netns, mount) and iproute2; .ci/run calls it after building such a folder.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime="$(cd "${1:?usage: scripts/container-smoke.sh RUNTIME_DIR [CONFIG]}" && pwd)"
config="${2:-config/container.yaml}"
[ "$(id -u)" -eq 0 ] || { echo "container-smoke: needs root (ip netns)" >&2; exit 1; }

# Per-run names and addresses (interface names are at most 15 characters).
id=$$
net=$((id % 200 + 20))
ns="tbsmoke$id" host_if="tbh$id" ns_if="tbn$id"
host_ip="10.77.$net.1" ns_ip="10.77.$net.2" outsider="100.64.$net.1"
work="$(mktemp -d)"
serve_pid=""
cleanup() {
  set +e
  [ -n "$serve_pid" ] && kill -KILL "$serve_pid" 2>/dev/null
  # Whatever still runs in the namespace was started here.
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  ip link del "$host_if" 2>/dev/null
  rm -rf "$work"
  return 0
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip link add "$host_if" type veth peer name "$ns_if"
ip link set "$ns_if" netns "$ns"
ip addr add "$host_ip/24" dev "$host_if"
ip addr add "$outsider/32" dev "$host_if"
ip link set "$host_if" up
ip -n "$ns" addr add "$ns_ip/24" dev "$ns_if"
ip -n "$ns" link set "$ns_if" up
ip -n "$ns" route add default via "$host_ip"

# What the image holds, readable by uid 1000: node (here in /usr/local/bin), /app, the config
# (root's, read-only to the service).
mkdir -p "$work/bin" "$work/etc/ticketbooth"
cp "$(command -v node)" "$work/bin/node"
cp "$config" "$work/etc/ticketbooth/ticketbooth.yaml"
chmod -R a+rX "$work" "$runtime"
chmod 0755 "$work/bin/node"

# The Dockerfile's exec-form instructions as arguments, with the image's paths mapped to here.
# image_args INSTRUCTION... prints them NUL-separated (ENTRYPOINT CMD: the start; HEALTHCHECK: the probe).
image_args() {
  node -e '
    const [file, app, etc, ...which] = process.argv.slice(1);
    const text = require("fs").readFileSync(file, "utf8").replace(/\\\n/g, " ");
    const args = which.flatMap((w) => {
      const line = text.split("\n").find((l) => l.startsWith(w + " "));
      if (!line) throw new Error(`no ${w} in ${file}`);
      return JSON.parse(line.slice(line.indexOf("[")));
    });
    const mapped = args.map((a) => a.replace(/^\/app\//, app + "/").replace(/^\/etc\/ticketbooth\//, etc + "/"));
    process.stdout.write(mapped.join("\0") + "\0");
  ' Dockerfile "$runtime" "$work/etc/ticketbooth" "$@"
}
mapfile -d '' start < <(image_args ENTRYPOINT CMD)
mapfile -d '' probe < <(image_args HEALTHCHECK)
start[0]="$work/bin/node"
probe[0]="$work/bin/node"

# In the namespace: a private mount namespace whose root is read-only, then uid/gid 1000 with no
# capability left and no way to gain one, the image's environment and working directory. Each step
# execs the next, so the process started with this prefix ends up being node itself.
as_image=(
  ip netns exec "$ns" unshare --mount --propagation private sh -c 'mount -o remount,bind,ro / && exec "$@"' sh
  setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent NODE_ENV=production sh -c 'cd "$0" && exec "$@"' "$runtime"
)

echo "container-smoke: ${start[*]##*/} in netns $ns ($ns_ip), uid 1000, read-only /"
"${as_image[@]}" "${start[@]}" 2>"$work/serve.log" >"$work/audit.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q 'admin .*listening on' "$work/serve.log" && break; sleep 0.1; done
kill -0 "$serve_pid" 2>/dev/null || { echo "container-smoke: serve exited" >&2; cat "$work/serve.log" >&2; exit 1; }
# Like the image's node as PID 1, the process signalled below is node itself, not a wrapper.
[ "$(readlink "/proc/$serve_pid/exe")" = "$work/bin/node" ] || { echo "container-smoke: $serve_pid is $(readlink "/proc/$serve_pid/exe"), not node" >&2; exit 1; }
grep 'listening on' "$work/serve.log" | sed 's/^/  stderr: /' || true

# From the host side of the veth: the greeting from an allowed address and from one outside `allow`.
greeting() {
  node -e '
    const [host, port, from] = process.argv.slice(1);
    const s = require("net").connect({ host, port: Number(port), localAddress: from, timeout: 5000 });
    let got = "";
    s.on("data", (d) => { got += d; if (got.includes("\n")) { process.stdout.write(got.split("\n")[0].trim() + "\n"); s.end("QUIT\r\n"); s.destroy(); } });
    s.on("timeout", () => { console.error("timed out"); process.exit(1); });
    s.on("error", (e) => { console.error(e.message); process.exit(1); });
  ' "$ns_ip" "$1" "$2"
}
port="$(node -e 'const y=require("js-yaml");const c=y.load(require("fs").readFileSync(process.argv[1],"utf8"));console.log(c.listeners.find((l)=>l.type==="smtp").listen.split(":").pop())' "$config")"
admin_port="$(node -e 'const y=require("js-yaml");const c=y.load(require("fs").readFileSync(process.argv[1],"utf8"));console.log(c.admin.listen.split(":").pop())' "$config")"
allowed="$(greeting "$port" "$host_ip" 2>&1)" || true
echo "  from $host_ip to $ns_ip:$port: $allowed"
[[ "$allowed" == 220\ * ]] || { echo "container-smoke: no 220 greeting from $ns_ip:$port" >&2; cat "$work/serve.log" >&2; exit 1; }
refused="$(greeting "$port" "$outsider" 2>&1)" || true
echo "  from $outsider (outside allow) to $ns_ip:$port: $refused"
[[ "$refused" == 554\ * ]] || { echo "container-smoke: a client outside the allow list was not refused" >&2; exit 1; }
readyz="$(node -e 'fetch(process.argv[1]).then(async (r) => { console.log(r.status, (await r.text()).trim()); process.exit(r.status === 200 ? 0 : 1); })' "http://$ns_ip:$admin_port/readyz")" ||
  { echo "container-smoke: /readyz from outside: $readyz" >&2; exit 1; }
echo "  GET http://$ns_ip:$admin_port/readyz from the host: $readyz"

# The Dockerfile's HEALTHCHECK, run where Docker runs it: inside the container (its namespace, its user).
health="$("${as_image[@]}" "${probe[@]}")" || { echo "container-smoke: HEALTHCHECK failed: $health" >&2; exit 1; }
echo "  HEALTHCHECK (${probe[*]:1}): exit 0: $health"

# Resident memory after the checks (for the Kubernetes requests in deploy/kubernetes/deployment.yaml).
echo "  RSS after the checks: $(awk '/^VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$serve_pid/status")"

kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=""
[ "$status" -eq 0 ] || { echo "container-smoke: serve exited $status on SIGTERM" >&2; cat "$work/serve.log" >&2; exit 1; }
echo "container-smoke: ok (SIGTERM: exit 0)"
