#!/bin/bash
# fastboot.cloud built-in lab: a real single-node Ceph (one mon, one mgr, one bluestore OSD on a
# sparse file) without systemd, from Debian's packages.
#   tools/lab/ceph.sh up      idempotent: bootstrap, or restart stopped daemons, or nothing
#   tools/lab/ceph.sh down    stop only the daemons this script started (pid files) and wipe the state
#   tools/lab/ceph.sh status  print health; exit 1 when the cluster is not up
#   tools/lab/ceph.sh env     print 'export CEPH_CONF=...' for the shell
# Environment: FASTBOOT_LAB_DIR (default /var/tmp/fastboot-lab), FASTBOOT_CEPH_IP (default 127.0.0.1),
# CEPH_BLOCK_GB (default 12).
# Pools and client keys are NOT made here: that is the collection's ceph_rbd role's job.
set -euo pipefail
exec </dev/null   # never reads stdin; with fd 0 closed the ceph CLI dies on sys.stdin.isatty()
LAB=${FASTBOOT_LAB_DIR:-/var/tmp/fastboot-lab}
D=$LAB/ceph
GB=${CEPH_BLOCK_GB:-12}
export CEPH_CONF=$D/ceph.conf
# the ceph CLI is a /usr/bin/python3 script: keep Debian's python ahead of any pyenv/venv python
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
T0=$(date +%s.%N)
log() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[ceph %5.1fs] %s\n", b-a, m}'; }
die() { echo "ceph.sh: $*" >&2; exit 1; }
wait_for() {
  local what=$1 end=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "timed out waiting for $what (logs: $D/log)"
    sleep 0.5
  done
  log "$what"
}
running() { local pf=$D/run/$1.pid; [ -s "$pf" ] && grep -qs ceph- "/proc/$(cat "$pf")/cmdline"; }
IP=${FASTBOOT_CEPH_IP:-127.0.0.1}   # any 127.x address: two labs can run side by side
ADDR="[v2:$IP:3300,v1:$IP:6789]"

need_packages() {
  local missing=()
  for b in ceph-mon ceph-mgr ceph-osd ceph rbd ceph-authtool monmaptool uuidgen; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run 'make deps' (apt packages ceph-mon ceph-mgr ceph-osd ceph-common uuid-runtime)"
}

write_conf() {
  local fsid=$1
  cat > "$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = $ADDR
public addr = $IP
ms bind ipv6 = false
auth allow insecure global id reclaim = false
run dir = $D/run
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon cluster log file = $D/log/\$cluster.log
crash dir = $D/crash
keyring = $D/\$cluster.\$name.keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.1
mgr stats period = 1
mgr initial modules = iostat
[mon]
admin socket = $D/run/\$name.asok
mon data = $D/mon/\$cluster-\$id
keyring = \$mon_data/keyring
[mgr]
admin socket = $D/run/\$name.asok
mgr data = $D/mgr/\$cluster-\$id
keyring = \$mgr_data/keyring
[osd]
admin socket = $D/run/\$name.asok
osd data = $D/osd/\$cluster-\$id
keyring = \$osd_data/keyring
osd objectstore = bluestore
osd memory target = 1073741824
bluestore block create = true
bluestore block size = $((GB << 30))
bluestore fsck on mkfs = false
EOF
}

up() {
  need_packages
  if [ ! -f "$D/mon/ceph-a/store.db/CURRENT" ]; then
    log "bootstrap in $D"
    rm -rf "$D"
    mkdir -p "$D"/{run,log,crash,mon,mgr/ceph-x,osd/ceph-0}
    write_conf "$(uuidgen)"
    ceph-authtool -C "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool -C "$D/ceph.client.admin.keyring" --gen-key -n client.admin --cap mon 'allow *' \
      --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$D/mon.keyring" --import-keyring "$D/ceph.client.admin.keyring" >/dev/null
    monmaptool --create --clobber --enable-all-features --addv a "$ADDR" \
      --fsid "$(awk '/^fsid/{print $3}' "$CEPH_CONF")" "$D/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
  fi
  running mon.a || { ceph-mon -i a; log "ceph-mon started"; }
  wait_for "mon quorum" 60 ceph mon stat
  [ -s "$D/mgr/ceph-x/keyring" ] || ceph auth get-or-create mgr.x mon 'allow profile mgr' \
    osd 'allow *' mds 'allow *' -o "$D/mgr/ceph-x/keyring"
  running mgr.x || { ceph-mgr -i x; log "ceph-mgr started"; }
  if [ ! -s "$D/osd/ceph-0/keyring" ]; then
    local u k
    u=$(uuidgen); k=$(ceph-authtool --gen-print-key)
    [ "$(echo "{\"cephx_secret\": \"$k\"}" | ceph osd new "$u" -i -)" = 0 ] || die "expected osd id 0"
    ceph-osd -i 0 --mkfs --osd-uuid "$u" --key "$k" >"$D/log/osd-mkfs.log" 2>&1 \
      || { cat "$D/log/osd-mkfs.log"; die "ceph-osd --mkfs failed"; }
    printf '[osd.0]\n\tkey = %s\n' "$k" >"$D/osd/ceph-0/keyring"
    log "osd.0 created"
  fi
  running osd.0 || { ceph-osd -i 0 2>>"$D/log/osd-start.log"; log "ceph-osd started"; }
  wait_for "osd.0 up" 120 bash -c "ceph osd dump -f json | grep -q '\"up\":1'"
  wait_for "mgr available" 120 bash -c "ceph mgr stat -f json | grep -q '\"available\": *true'"
  log "ready: $(ceph health) CEPH_CONF=$CEPH_CONF"
}

stop_daemons() {
  local sig=$1 n pf pid pids=()
  shift
  for n in "$@"; do
    pf=$D/run/$n.pid
    [ -s "$pf" ] || continue
    pid=$(cat "$pf")
    grep -qs ceph- "/proc/$pid/cmdline" || continue
    kill "-$sig" "$pid" && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  done
  echo "${#pids[@]}"
}

down() {
  local n
  n=$(stop_daemons KILL osd.0 mgr.x mon.a)
  rm -rf "$D"
  log "stopped $n daemon(s), removed $D"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) ceph -s --connect-timeout 5 ;;
  env) echo "export CEPH_CONF=$CEPH_CONF" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
