#!/usr/bin/env bash
# The harness's real node: containerd (Debian) + runc + the CNI bridge plugin + kubelet + kube-proxy
# (built by build-k8s.sh), joined to the control plane that cluster.sh starts. Pods pinned to it run as
# real processes: real exits, real OOM kills by the memory cgroup, real probes, real image pulls from the
# local registry, real Service traffic through kube-proxy's iptables rules.
#
#   node.sh up STATE_DIR KUBECONFIG CA_CERT    start (idempotent); the node registers as $NODE_NAME
#   node.sh down STATE_DIR KUBECONFIG          stop it and give the host back what it changed
#   node.sh diagnose STATE_DIR KUBECONFIG      print its conditions, taints, free disk and last errors (after a failure)
#
# kube-router's firewall (and nothing else of it) enforces NetworkPolicies on the node.
#
# The node is labelled aegis.io/node=real and tainted aegis.io/real-node=true:NoSchedule: only workloads
# that ask for it (a toleration and a nodeSelector, part of their spec and so copied into their shadows)
# land here; every other pod keeps going to the kwok nodes.
#
# What a kubelet changes on a host, and `down` restores: the sysctls below (kubelet's kernel tunables,
# ip_forward from the bridge plugin, route_localnet and the bridge netfilter switches from kube-proxy),
# the iptables and ip6tables rules (every KUBE-*, CNI-* and AEGIS-* chain and every rule that jumps to
# one; the host's own rules stay as they are), kube-router's ipsets, the pods' network namespaces, the bridge, the mounts under
# STATE_DIR, and the kubepods cgroups.
#
# Facts of these machines (Debian 12 VM, cgroup v1, root without CAP_SYS_RESOURCE):
#   - kubelet refuses cgroup v1 unless failCgroupV1: false;
#   - runc cannot set a negative oom_score_adj: containerd's restrict_oom_score_adj = true;
#   - registry.k8s.io is unreachable: the sandbox image is tests/apps/pause, imported with ctr.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:?up|down}; state=${2:?state dir}; kubeconfig=${3:?kubeconfig}; ca=${4:-}
TOOLS_DIR="${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}"
NODE_NAME=aegis-node
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.0.0.0/24   # kube-apiserver's default --service-cluster-ip-range (kwokctl sets none)
API_SERVICE_IP=10.0.0.1    # the `kubernetes` Service: the range's first address
BRIDGE=aegis0
SANDBOX_IMAGE=aegis.local/pause:3.10
EVICTION_FREE=512Mi        # kubelet evicts below this much free disk (nodefs and imagefs)
MIN_FREE_MB=2048           # `up` refuses to start with less free disk than this under STATE_DIR
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
         kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet
         net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
node="$state/node"
sock="$node/containerd.sock"
log() { echo "node: $*" >&2; }

bin=$(bash scripts/harness/build-k8s.sh "$TOOLS_DIR")
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
ctr() { command ctr --address "$sock" --namespace k8s.io "$@"; }
running() { [ -f "$node/$1.pid" ] && kill -0 "$(cat "$node/$1.pid")" 2>/dev/null; }

# write_if_changed FILE < content: kube-proxy exits when its configuration file is rewritten, even with
# the same bytes, so a second `up` must leave unchanged files alone.
write_if_changed() {
  local tmp="$1.new"
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

start() {  # start NAME COMMAND...: a background process with its pid and log under $node
  local name=$1; shift
  "$@" > "$node/$name.log" 2>&1 &
  echo $! > "$node/$name.pid"
}

stop() {  # stop NAME: TERM, then KILL after 10 s
  local name=$1 pid
  [ -f "$node/$name.pid" ] || return 0
  pid=$(cat "$node/$name.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$node/$name.pid"
}

drop_node_rules() {  # drop_node_rules iptables|ip6tables: remove what kubelet, kube-proxy and CNI added
  local tool=$1
  command -v "$tool-save" >/dev/null || return 0
  "$tool-save" 2>/dev/null | awk '
    /^\*/ { table = $0; print; next }
    /^:(KUBE|CNI|AEGIS)-/ { next }
    /^-A / && /(KUBE|CNI|AEGIS)-/ { next }
    { print }' > "$node/$tool.kept"
  "$tool-restore" < "$node/$tool.kept" 2>/dev/null || log "could not restore the host's $tool rules"
}

up() {
  for tool in containerd runc iptables-save conntrack ipset; do
    command -v "$tool" >/dev/null || { log "$tool is missing (scripts/tools.sh installs it from Debian)"; exit 1; }
  done
  if ! running kubelet && curl -s -m 1 http://127.0.0.1:10248/healthz >/dev/null 2>&1; then
    log "another kubelet already serves 127.0.0.1:10248 (another harness's real node?): stop it first (cluster.sh down ITS_STATE_DIR)"
    exit 1
  fi
  mkdir -p "$node"/{cni/net.d,cni/ipam,containerd/certs.d,kubelet,logs}
  local free_mb
  free_mb=$(df -Pm "$node" | awk 'NR == 2 {print $4}')
  if [ "${free_mb:-0}" -lt "$MIN_FREE_MB" ]; then
    log "only ${free_mb} MB free on $(df -P "$node" | awk 'NR == 2 {print $6}') (the node's state, images and pods' logs):"
    log "at least $MIN_FREE_MB MB are needed, or the kubelet reports DiskPressure and no pod runs; free some space (cargo clean?)"
    exit 1
  fi
  # What the host had before, once: `down` puts it back.
  if [ ! -f "$node/host.saved" ]; then
    for k in "${SYSCTLS[@]}"; do v=$(sysctl -n "$k" 2>/dev/null) && printf '%s=%s\n' "$k" "$v"; done > "$node/sysctl.saved"
    touch "$node/host.saved"
  fi
  # kube-proxy's Service rules must see traffic between pods on the bridge.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1 >/dev/null 2>&1 || true

  local node_ip apps dns
  dns=$(awk '$1 == "nameserver" {print $2; exit}' /etc/resolv.conf)
  [ -n "$dns" ] || dns=127.0.0.53
  node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}' | head -n1)
  [ -n "$node_ip" ] || node_ip=$(hostname -I | awk '{print $1}')
  [ -n "$node_ip" ] || { log "no IPv4 address for the node"; exit 1; }

  write_if_changed "$node/containerd.toml" <<TOML
version = 2
root = "$node/containerd/root"
state = "$node/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$node/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$node/containerd/certs.d"
TOML
  write_if_changed "$node/cni/net.d/10-aegis.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "aegis", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$node/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
JSON
  if ! running containerd; then
    start containerd containerd --config "$node/containerd.toml"
    for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
    ctr version >/dev/null 2>&1 || { log "containerd did not start:"; tail -n 20 "$node/containerd.log" >&2; exit 1; }
  fi
  if ! ctr images ls -q | grep -qx "$SANDBOX_IMAGE"; then
    apps=$(bash scripts/harness/build-apps.sh "$TOOLS_DIR")
    python3 scripts/harness/build-images.py "$node/images" "$apps" >/dev/null
    ctr images import --index-name "$SANDBOX_IMAGE" "$node/images/pause.tar" >/dev/null
  fi

  [ -f "$ca" ] || { log "the cluster CA certificate is needed to authenticate the API server to the kubelet"; exit 64; }
  write_if_changed "$node/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $ca}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$sock
podLogsDir: $node/logs
resolvConf: /etc/resolv.conf
# No cluster DNS server runs here: pods resolve through the host's nameserver (and kubelet does not warn
# MissingClusterDNS on every pod, an Event the analysis would read).
clusterDomain: cluster.local
clusterDNS: [$dns]
registerWithTaints:
- {key: aegis.io/real-node, value: "true", effect: NoSchedule}
# Absolute thresholds: this node shares a large disk with everything else on the machine, and 2 % of
# it (kubelet's style of default) can be more than the whole free space a build leaves: the node then
# reports DiskPressure, is tainted, and no pod is scheduled on it (CI saw every real-node test time out).
evictionHard: {memory.available: 100Mi, nodefs.available: $EVICTION_FREE, imagefs.available: $EVICTION_FREE, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 50
YAML
  if ! running kubelet; then
    start kubelet "$bin/kubelet" --config "$node/kubelet.yaml" --kubeconfig "$kubeconfig" --root-dir "$node/kubelet" \
      --hostname-override "$NODE_NAME" --node-ip "$node_ip" --node-labels "aegis.io/node=real,type=real"
  fi

  write_if_changed "$node/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0}
YAML
  running kube-proxy || start kube-proxy "$bin/kube-proxy" --config "$node/kube-proxy.yaml"
  # Pods reach the API server as in any cluster, through the `kubernetes` Service: it listens on
  # loopback here, so traffic from the pods' bridge to the Service's address is sent there (and only
  # from the bridge: the API server stays off the host's network). The isolation tests need a real
  # path to it, for the shadow's NetworkPolicy to be what stops them.
  local api_port
  api_port=$(awk '/server:/ {print $2}' "$kubeconfig" | head -n1 | sed 's|.*:||')
  sysctl -qw net.ipv4.conf.all.route_localnet=1 >/dev/null
  iptables -t nat -N AEGIS-POD-APISERVER 2>/dev/null || iptables -t nat -F AEGIS-POD-APISERVER
  iptables -t nat -A AEGIS-POD-APISERVER -i "$BRIDGE" -d "$API_SERVICE_IP" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$api_port"
  # Before kube-proxy's Service rules (it prepends its own jump when it starts, so wait for it first).
  for _ in $(seq 100); do
    iptables -t nat -C PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES 2>/dev/null && break
    sleep 0.1
  done
  iptables -t nat -D PREROUTING -j AEGIS-POD-APISERVER 2>/dev/null || true
  iptables -t nat -I PREROUTING 1 -j AEGIS-POD-APISERVER

  local t0; t0=$(date +%s)
  for _ in $(seq 600); do
    [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
    running kubelet || { log "kubelet exited:"; tail -n 30 "$node/kubelet.log" >&2; exit 1; }
    sleep 0.2
  done
  [ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] \
    || { log "node $NODE_NAME not Ready after 120 s:"; tail -n 30 "$node/kubelet.log" >&2; exit 1; }
  # NetworkPolicy enforcement: kube-router's firewall alone (no routing, no service proxy), so a
  # shadow's NetworkPolicy is enforced on this node, not only declared. It needs the Node object.
  if ! running kube-router; then
    start kube-router "$bin/kube-router" --kubeconfig "$kubeconfig" --hostname-override "$NODE_NAME" \
      --run-firewall=true --run-router=false --run-service-proxy=false --service-cluster-ip-range "$SERVICE_CIDR" \
      --health-port 20244 --metrics-port 0 --iptables-sync-period 5m
    for _ in $(seq 100); do curl -sf http://127.0.0.1:20244/healthz >/dev/null 2>&1 && break; running kube-router || break; sleep 0.2; done
    curl -sf http://127.0.0.1:20244/healthz >/dev/null 2>&1 || { log "kube-router did not become healthy:"; tail -n 20 "$node/kube-router.log" >&2; exit 1; }
  fi
  local pressure
  pressure=$(kubectl get node "$NODE_NAME" -o 'jsonpath={range .status.conditions[?(@.status=="True")]}{.type} {end}' | tr ' ' '\n' | grep Pressure || true)
  [ -z "$pressure" ] || { log "node $NODE_NAME reports $(echo $pressure): no pod would be scheduled on it"; exit 1; }
  log "real node $NODE_NAME ($node_ip) Ready after $(( $(date +%s) - t0 ))s, ${free_mb} MB free, NetworkPolicies enforced by kube-router"
}

down() {
  [ -d "$node" ] || return 0
  # Pods first, while kubelet and containerd still run, so the CNI plugin takes their networks down.
  if running kubelet && kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 150); do
      [ -z "$(ctr tasks ls -q 2>/dev/null)" ] && break
      sleep 0.2
    done
    kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
  fi
  stop kube-router
  stop kube-proxy
  stop kubelet
  # Anything kubelet left running: kill the tasks and remove the sandboxes' networks through containerd.
  if running containerd; then
    for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 0.5
    for t in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  pkill -9 -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true
  # Network namespaces, the bridge and its veths.
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  ip link delete "$BRIDGE" 2>/dev/null || true
  # Mounts under the state dir (volumes, overlay snapshots, shm), deepest first.
  awk -v root="$node" '$2 == root || index($2, root "/") == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  # kubelet's cgroup hierarchy, leaves first.
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy/kubepods" ] && find "$hierarchy/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # The host's rules and tunables as they were.
  if [ -f "$node/host.saved" ]; then
    drop_node_rules iptables
    drop_node_rules ip6tables
    # kube-router's address sets, once no rule refers to them.
    for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router|inet6:KUBE-|inet6:kube-router)'); do ipset destroy "$set" 2>/dev/null || true; done
    while IFS= read -r kv; do sysctl -qw "$kv" >/dev/null 2>&1 || log "could not restore $kv"; done < "$node/sysctl.saved"
  fi
  rm -rf "$node"
}

diagnose() {  # what a person needs when the node's pods did not run: pressure, taints, disk, the kubelet's errors
  [ -d "$node" ] || { log "no node state under $state"; return 0; }
  log "conditions: $(kubectl get node "$NODE_NAME" -o 'jsonpath={range .status.conditions[*]}{.type}={.status} {end}' 2>&1)"
  log "taints: $(kubectl get node "$NODE_NAME" -o 'jsonpath={.spec.taints}' 2>&1)"
  log "disk: $(df -Ph "$node" | awk 'NR == 2 {print $4 " free of " $2 " on " $6}')"
  for p in containerd kubelet kube-proxy kube-router; do running "$p" || log "$p is not running"; done
  log "the kubelet's last errors:"
  grep -E '^E[0-9]{4}' "$node/kubelet.log" 2>/dev/null | tail -n 15 >&2 || true
  log "containerd's last errors:"
  grep -E 'level=error' "$node/containerd.log" 2>/dev/null | tail -n 10 >&2 || true
}

case "$cmd" in
up) up ;;
down) down ;;
diagnose) diagnose ;;
*) echo "usage: node.sh up STATE_DIR KUBECONFIG CA_CERT | down STATE_DIR KUBECONFIG | diagnose STATE_DIR KUBECONFIG" >&2; exit 64 ;;
esac
