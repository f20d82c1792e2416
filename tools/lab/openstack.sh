#!/bin/bash
# fastboot.cloud built-in lab: a real OpenStack all-in-one (Zed from Debian 12's packages) without systemd:
# MariaDB, RabbitMQ, Keystone, Glance (file store), Cinder (api, scheduler, volume with Debian's default LVM backend
# and no volume group: down until site.yml puts it on RBD), Placement, Nova (api, conductor, scheduler, compute
# with a private libvirtd running guests under TCG) and Neutron: a real neutron-server (ML2, no agents), or with
# FASTBOOT_LAB_NEUTRON=standin a STAND-IN (tools/lab/neutron_standin.py) that is not neutron. Either way
# servers can only be created with networks='none' (no agent wires ports). See docs/lab.md.
#   tools/lab/openstack.sh install  Debian packages, without letting their scripts start anything
#   tools/lab/openstack.sh up       idempotent: bootstrap once, restart what is down, nothing when all run
#   tools/lab/openstack.sh down     stop only what this script started (pid file with the process start
#                                   time + command line), delete its guests, restore /etc files, remove the state
#   tools/lab/openstack.sh restart SERVICE...  stop and start these services of a running lab and wait until
#                                   they answer again (the lab's stand-in for `systemctl restart`, used by the
#                                   roles' handlers through *_restart_command in inventory/lab)
#   tools/lab/openstack.sh status   one line per service; exit 1 when any is not running
#   tools/lab/openstack.sh env      print 'export OS_CLIENT_CONFIG_FILE=... OS_CLOUD=fastboot-lab'
# Environment: FASTBOOT_LAB_DIR (default /var/tmp/fastboot-lab); the state, pids and logs are in its
# openstack/ subdirectory. FASTBOOT_LAB_NEUTRON=server (default) or standin, read at bootstrap only.
# The cloud it makes is a DEFAULT one (Glance file store, Nova local qcow2 disks, no forced config drive, Cinder
# without a usable backend):
# switching it to Ceph/RBD is the collection's job (site.yml).
set -euo pipefail
exec </dev/null   # never reads stdin; with fd 0 closed the ceph/openstack CLIs die on sys.stdin.isatty()
LAB=${FASTBOOT_LAB_DIR:-/var/tmp/fastboot-lab}
D=$LAB/openstack
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLOUD=fastboot-lab
DB_PORT=13306
RABBIT_PORT=5679
RABBIT_DIST_PORT=25679
EPMD_PORT=4379
NEUTRON_PORT=9696
# every process the lab starts carries this variable (children inherit it); `down` uses it to find helpers
# that left their session (programs that rewrite their title, like neutron-server, may lose it: the pid file
# with the start time is the primary record)
MARK=FASTBOOT_OPENSTACK_LAB
# Debian's python (its openstacksdk) and tools first, whatever venv is active
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export OS_CLIENT_CONFIG_FILE=$D/clouds.yaml OS_CLOUD=$CLOUD
# neutron flavour: chosen at bootstrap, kept in the state dir
if [ -s "$D/neutron-mode" ]; then NEUTRON=$(cat "$D/neutron-mode"); else NEUTRON=${FASTBOOT_LAB_NEUTRON:-server}; fi
case $NEUTRON in server|standin) ;; *) echo "openstack.sh: FASTBOOT_LAB_NEUTRON must be server or standin" >&2; exit 1 ;; esac
# start order; `down` stops in reverse
SERVICES=(mysqld epmd rabbitmq virtlogd libvirtd keystone "neutron-$NEUTRON" glance-api cinder-api cinder-scheduler
  cinder-volume placement-api nova-api nova-conductor nova-scheduler nova-compute)
# /etc files the lab writes at bootstrap (Debian's copies are saved under $D/orig and put back by `down`)
ETC_FILES=(keystone/keystone.conf glance/glance-api.conf cinder/cinder.conf placement/placement.conf nova/nova.conf
  nova/nova-compute.conf neutron/neutron.conf neutron/plugins/ml2/ml2_conf.ini)
PACKAGES=(mariadb-server rabbitmq-server python3-pymysql keystone glance-api cinder-api cinder-scheduler
  cinder-volume placement-api nova-api nova-conductor nova-scheduler nova-compute nova-compute-kvm
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage uwsgi-core uwsgi-plugin-python3
  python3-openstackclient neutron-server)

T0=$(date +%s.%N)
log() {
  local line
  line=$(awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[openstack %5.1fs] %s", b-a, m}')
  echo "$line"
  [ ! -d "$D/log" ] || echo "$(date -u +%FT%TZ) $line" >>"$D/log/timings.log"
}
die() { echo "openstack.sh: $*" >&2; exit 1; }

wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 end=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "timed out waiting for $what (logs: $D/log)"
    sleep 0.5
  done
  log "$what"
}
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl -s -o /dev/null --max-time 10 "$1"; }
sql() { mariadb --socket="$D/mysqlrun/mysqld.sock" -uroot -N -B "$@"; }

# --- what each service runs: argv in CMD, user in USER_, the word its command line must contain in WORD ---
uwsgi_cmd() {  # uwsgi_cmd PORT WSGI_FILE USER
  CMD=(uwsgi --plugins python3 --master --die-on-term --enable-threads --lazy-apps --buffer-size 65535
    --processes 2 --threads 1 --add-header Connection:close --http-socket "127.0.0.1:$1" --wsgi-file "$2"
    --uid "$3" --gid "$3")
}
service_def() {
  USER_=root
  case $1 in
    mysqld)
      WORD=mariadbd
      CMD=(/usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$D/mysql"
        --socket="$D/mysqlrun/mysqld.sock" --pid-file="$D/mysqlrun/mysqld.pid" --port="$DB_PORT"
        --bind-address=127.0.0.1 --log-error="$D/log/mysql/mysqld.err" --character-set-server=utf8
        --collation-server=utf8_general_ci --innodb-buffer-pool-size=64M --max-connections=500
        --skip-log-bin --innodb-flush-log-at-trx-commit=2) ;;
    epmd)
      WORD=epmd USER_=rabbitmq
      CMD=(/usr/bin/epmd -address 127.0.0.1 -port "$EPMD_PORT") ;;
    rabbitmq)
      WORD=rabbit USER_=rabbitmq
      CMD=(env RABBITMQ_NODENAME=fastboot-lab@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        "RABBITMQ_NODE_PORT=$RABBIT_PORT" "RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT" ERL_EPMD_ADDRESS=127.0.0.1
        "ERL_EPMD_PORT=$EPMD_PORT" RABBITMQ_MNESIA_BASE="$D/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$D/log/rabbitmq"
        RABBITMQ_PID_FILE="$D/rabbitmq/pid" /usr/lib/rabbitmq/bin/rabbitmq-server) ;;
    virtlogd)
      WORD=virtlogd
      CMD=(/usr/sbin/virtlogd -f "$D/conf/virtlogd.conf") ;;
    libvirtd)
      WORD=libvirtd
      CMD=(/usr/sbin/libvirtd -f "$D/conf/libvirtd.conf") ;;
    neutron-standin)
      WORD=neutron_standin USER_=nobody
      CMD=(/usr/bin/python3 "$HERE/neutron_standin.py" "$NEUTRON_PORT") ;;
    neutron-server)
      WORD=neutron-server USER_=neutron
      CMD=(/usr/bin/neutron-server --config-file /etc/neutron/neutron.conf
        --config-file /etc/neutron/plugins/ml2/ml2_conf.ini) ;;
    keystone) WORD=keystone-wsgi-public; uwsgi_cmd 5000 /usr/bin/keystone-wsgi-public keystone ;;
    glance-api)
      WORD=glance-api USER_=glance
      CMD=(/usr/bin/glance-api --config-file /etc/glance/glance-api.conf) ;;
    cinder-api) WORD=cinder-wsgi; uwsgi_cmd 8776 /usr/bin/cinder-wsgi cinder ;;
    cinder-scheduler|cinder-volume)
      WORD=$1 USER_=cinder
      CMD=("/usr/bin/$1" --config-file /etc/cinder/cinder.conf) ;;
    placement-api) WORD=placement-api; uwsgi_cmd 8778 /usr/bin/placement-api placement ;;
    nova-api) WORD=nova-api-wsgi; uwsgi_cmd 8774 /usr/bin/nova-api-wsgi nova ;;
    nova-conductor|nova-scheduler)
      WORD=$1 USER_=nova
      CMD=("/usr/bin/$1" --config-file /etc/nova/nova.conf) ;;
    nova-compute)
      WORD=nova-compute USER_=nova
      CMD=(/usr/bin/nova-compute --config-file /etc/nova/nova.conf --config-file /etc/nova/nova-compute.conf) ;;
    *) die "unknown service $1" ;;
  esac
}

starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }  # field 22 of stat
session_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f4; }  # field 6 of stat
# pid of service $1 when the process in its pid file ('PID STARTTIME') is the one the lab started: same
# start time (so not a reused pid), still the leader of its own session, expected command line; else empty
lab_pid() {
  local pf=$D/run/$1.pid pid st
  [ -s "$pf" ] || return 0
  read -r pid st <"$pf" || true
  [ -n "$pid" ] && [ -n "$st" ] || return 0
  service_def "$1"
  [ "$(starttime "$pid")" = "$st" ] && [ "$(session_of "$pid")" = "$pid" ] \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$WORD" && echo "$pid"
  return 0
}
has_mark() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "$MARK=$D"; }
running() { [ -n "$(lab_pid "$1")" ]; }

start() {  # start NAME: nothing when it runs; else in its own session (pid = process group) with the marker
  local n=$1 home pre=()
  running "$n" && return 0
  service_def "$n"
  if [ "$USER_" != root ]; then
    home=$(getent passwd "$USER_" | cut -d: -f6)
    pre=(setpriv "--reuid=$USER_" "--regid=$(id -g "$USER_")" --init-groups env "HOME=$home")
  fi
  (exec setsid env "$MARK=$D" "${pre[@]}" "${CMD[@]}" >>"$D/log/$n.out" 2>&1 </dev/null) &
  echo "$! $(starttime $!)" >"$D/run/$n.pid"
  STARTED+=("$n")
  log "started $n (pid $!)"
}

need_packages() {
  local b missing=()
  for b in mariadbd mariadb-install-db epmd /usr/lib/rabbitmq/bin/rabbitmq-server libvirtd virtlogd virsh \
    qemu-system-x86_64 keystone-manage glance-api glance-manage cinder-manage cinder-wsgi cinder-scheduler \
    cinder-volume placement-manage nova-manage nova-compute nova-conductor nova-scheduler nova-api-wsgi uwsgi \
    setpriv curl; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
  [ "$NEUTRON" != server ] || command -v neutron-server >/dev/null || missing+=(neutron-server)
  /usr/bin/python3 -c 'import openstack, pymysql' 2>/dev/null || missing+=(python3-openstacksdk python3-pymysql)
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run 'tools/lab/openstack.sh install'"
}

install_packages() {
  local created=0 p t=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # package scripts must start nothing (no systemd here: sysv scripts would start a second libvirtd, mariadb...)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# fastboot.cloud lab install: start no service\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created=1
  fi
  for p in keystone glance-common nova-common placement-common neutron-common; do
    echo "$p $p/configure_db boolean false" | debconf-set-selections
  done
  echo "keystone keystone/register-endpoint boolean false" | debconf-set-selections || true
  echo "keystone keystone/create-admin-tenant boolean false" | debconf-set-selections || true
  # cinder's questions are owned by cinder-common/cinder-api but named cinder/...: no database, no endpoint
  echo "cinder-common cinder/configure_db boolean false" | debconf-set-selections || true
  echo "cinder-api cinder/configure_api-endpoint boolean false" | debconf-set-selections || true
  apt-get -o DPkg::Lock::Timeout=1200 install -y -q --no-install-recommends "${PACKAGES[@]}" || {
    [ $created = 0 ] || rm -f /usr/sbin/policy-rc.d
    die "apt-get install failed"
  }
  [ $created = 0 ] || rm -f /usr/sbin/policy-rc.d
  log "packages installed in $((SECONDS - t)) s"
}

render() {  # render TEMPLATE DEST OWNER_GROUP
  sed -e "s|@PASSWORD@|$PASSWORD|g" -e "s|@STATE@|$D|g" -e "s|@DB_PORT@|$DB_PORT|g" \
    -e "s|@RABBIT_PORT@|$RABBIT_PORT|g" "$HERE/openstack/conf/$1" >"$2.fastboot-tmp"
  chown "root:$3" "$2.fastboot-tmp"
  chmod 640 "$2.fastboot-tmp"
  mv "$2.fastboot-tmp" "$2"
}

compute_conf() {
  # Debian's nova-compute.conf (read after nova.conf) sets [libvirt] virt_type=kvm: keep the distribution's
  # file as it is (the collection's roles must cope with it) but run guests under TCG; the template when
  # there is no such line
  local f=/etc/nova/nova-compute.conf
  if [ -e "$f" ] && grep -q '^virt_type *=' "$f"; then
    sed -e 's/^virt_type *=.*/virt_type=qemu\ncpu_mode=none/' -e '/^cpu_mode *=/d' "$f" >"$f.fastboot-tmp"
    chown root:nova "$f.fastboot-tmp"
    chmod 640 "$f.fastboot-tmp"
    mv "$f.fastboot-tmp" "$f"
  else
    render nova-compute.conf "$f" nova
  fi
}

write_configs() {
  local f
  mkdir -p "$D"/{run,conf,orig,mysqlrun,rabbitmq/mnesia} \
    "$D"/log/{keystone,glance,cinder,placement,nova,neutron,mysql,rabbitmq}
  echo "$NEUTRON" >"$D/neutron-mode"
  PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  echo "$PASSWORD" >"$D/password"
  chmod 600 "$D/password"
  for f in "${ETC_FILES[@]}"; do
    mkdir -p "$D/orig/$(dirname "$f")"
    if [ -e "/etc/$f" ]; then cp -a "/etc/$f" "$D/orig/$f"; else touch "$D/orig/$f.absent"; fi
  done
  render keystone.conf /etc/keystone/keystone.conf keystone
  render glance-api.conf /etc/glance/glance-api.conf glance
  render cinder.conf /etc/cinder/cinder.conf cinder
  render placement.conf /etc/placement/placement.conf placement
  render nova.conf /etc/nova/nova.conf nova
  compute_conf
  if [ "$NEUTRON" = server ]; then
    render neutron.conf /etc/neutron/neutron.conf neutron
    render ml2_conf.ini /etc/neutron/plugins/ml2/ml2_conf.ini neutron
    install -d -o neutron -g neutron /var/lib/neutron/lock
  fi
  render libvirtd.conf "$D/conf/libvirtd.conf" root
  printf 'log_outputs = "3:file:%s/log/virtlogd.log"\n' "$D" >"$D/conf/virtlogd.conf"
  chown mysql:mysql "$D/mysqlrun" "$D/log/mysql"
  chown -R rabbitmq:rabbitmq "$D/rabbitmq" "$D/log/rabbitmq"
  chown keystone:keystone "$D/log/keystone"
  chown glance:glance "$D/log/glance"
  chown cinder:cinder "$D/log/cinder"
  chown placement:placement "$D/log/placement"
  chown nova:nova "$D/log/nova"
  ! getent passwd neutron >/dev/null || chown neutron:neutron "$D/log/neutron"
  install -d -o glance -g glance /var/lib/glance/images /var/lib/glance/staging /var/lib/glance/tasks_work_dir
  install -d -o nova -g nova /var/lib/nova/instances /var/lib/nova/tmp
  install -d -o cinder -g cinder /var/lib/cinder/tmp
  umask 077
  cat >"$D/clouds.yaml" <<EOF
# fastboot.cloud lab (tools/lab/openstack.sh): admin of the all-in-one
clouds:
  $CLOUD:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      password: $PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
  umask 022
  log "configs written (/etc/{keystone,glance,cinder,placement,nova}, $D)"
}

as() { local u=$1; shift; setpriv "--reuid=$u" "--regid=$u" --init-groups env "HOME=/var/lib/$u" "$@"; }

db_syncs() {  # the other services' schemas, in parallel with keystone's start; one log each
  (as glance glance-manage db_sync >"$D/log/glance-dbsync.log" 2>&1) &
  SYNC_PIDS=($!)
  (as placement placement-manage db sync >"$D/log/placement-dbsync.log" 2>&1) &
  SYNC_PIDS+=($!)
  (as cinder cinder-manage db sync >"$D/log/cinder-dbsync.log" 2>&1) &
  SYNC_PIDS+=($!)
  (set -e
    as nova nova-manage api_db sync
    as nova nova-manage cell_v2 map_cell0
    as nova nova-manage cell_v2 list_cells | grep -qw cell1 || as nova nova-manage cell_v2 create_cell --name=cell1
    as nova nova-manage db sync) >"$D/log/nova-dbsync.log" 2>&1 &
  SYNC_PIDS+=($!)
  if [ "$NEUTRON" = server ]; then
    (as neutron neutron-db-manage --config-file /etc/neutron/neutron.conf \
      --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade heads >"$D/log/neutron-dbsync.log" 2>&1) &
    SYNC_PIDS+=($!)
  fi
}
wait_syncs() {
  local p
  for p in "${SYNC_PIDS[@]}"; do wait "$p" || die "a database sync failed (see $D/log/*-dbsync.log)"; done
  log "glance, cinder, placement, nova, neutron schemas synced"
}

foreign_libvirtd() {  # a libvirtd that is not ours answers at the default socket
  running libvirtd && return 1
  [ -S /run/libvirt/libvirt-sock ] && timeout 10 virsh -c qemu:///system version >/dev/null 2>&1
}

compute_node_known() { [ "$(sql -e 'SELECT COUNT(*) FROM nova.compute_nodes WHERE deleted=0')" -ge 1 ]; }
heartbeat_since() {  # the nova-compute service reported at or after $1 (UTC 'YYYY-MM-DD HH:MM:SS')
  [ "$(sql -e "SELECT COUNT(*) FROM nova.services WHERE \`binary\`='nova-compute' AND deleted=0
    AND updated_at >= '$1'")" -ge 1 ]
}
# heartbeats of the cinder-volume backends so far: report_count grows only when a backend's driver initialized
# (the default LVM backend without a volume group never does; an RBD backend within a report_interval of its
# start); updated_at is no such sign, cinder-volume touches its service row when it starts
volume_reports() {
  sql -e "SELECT COALESCE(SUM(report_count), 0) FROM cinder.services WHERE \`binary\`='cinder-volume' AND deleted=0"
}
volume_reported_since() { [ "$(volume_reports)" -gt "$1" ]; }

up() {
  local n all=1 bootstrap=0 tc=""
  need_packages
  for n in "${SERVICES[@]}"; do running "$n" || all=0; done
  if [ $all = 1 ] && [ -e "$D/bootstrapped" ]; then
    log "all ${#SERVICES[@]} services running: nothing to do ($OS_CLIENT_CONFIG_FILE)"
    return 0
  fi
  if [ ! -e "$D/bootstrapped" ]; then
    [ ! -d "$D" ] || { log "unfinished bootstrap in $D: cleaning it first"; down >/dev/null; }
    bootstrap=1
  fi
  if foreign_libvirtd; then
    die "a libvirtd this lab did not start answers at qemu:///system; stop it first (only one libvirtd per host)"
  fi
  STARTED=()
  if [ $bootstrap = 1 ]; then
    log "bootstrap in $D"
    mkdir -p "$D/log"
    write_configs
    install -d -o mysql -g mysql "$D/mysql"
    mariadb-install-db --no-defaults --datadir="$D/mysql" --user=mysql --skip-test-db \
      >"$D/log/mysql/install-db.log" 2>&1 || die "mariadb-install-db failed ($D/log/mysql/install-db.log)"
  fi
  PASSWORD=$(cat "$D/password")
  start mysqld
  start epmd
  wait_for "epmd on :$EPMD_PORT" 60 port_open $EPMD_PORT
  start rabbitmq
  start virtlogd
  start libvirtd
  wait_for "mariadb on :$DB_PORT" 120 port_open $DB_PORT
  if [ $bootstrap = 1 ]; then
    sql <<EOF
CREATE DATABASE IF NOT EXISTS keystone; CREATE DATABASE IF NOT EXISTS glance; CREATE DATABASE IF NOT EXISTS cinder;
CREATE DATABASE IF NOT EXISTS placement; CREATE DATABASE IF NOT EXISTS nova_api;
CREATE DATABASE IF NOT EXISTS nova; CREATE DATABASE IF NOT EXISTS nova_cell0; CREATE DATABASE IF NOT EXISTS neutron;
CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'openstack'@'127.0.0.1';
EOF
    as keystone keystone-manage db_sync >"$D/log/keystone-dbsync.log" 2>&1 \
      || die "keystone db_sync failed ($D/log/keystone-dbsync.log)"
    { keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
      keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
    } >"$D/log/keystone-keys.log" 2>&1 || die "keystone-manage fernet/credential_setup failed ($D/log/keystone-keys.log)"
    as keystone keystone-manage bootstrap --bootstrap-password "$PASSWORD" \
      --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
      --bootstrap-public-url http://127.0.0.1:5000/v3/ --bootstrap-region-id RegionOne \
      >"$D/log/keystone-bootstrap.log" 2>&1 || die "keystone bootstrap failed ($D/log/keystone-bootstrap.log)"
    chown -R keystone:keystone "$D/log/keystone"
    log "keystone schema and admin bootstrapped"
  fi
  start keystone
  [ $bootstrap = 0 ] || db_syncs
  wait_for "keystone answering" 180 http_ok http://127.0.0.1:5000/v3
  if [ $bootstrap = 1 ]; then
    /usr/bin/python3 "$HERE/openstack/register.py" "$PASSWORD" $NEUTRON_PORT >>"$D/log/register.log" 2>&1 \
      || die "registering the catalog failed ($D/log/register.log)"
    log "service users and catalog registered"
    wait_syncs
  fi
  start "neutron-$NEUTRON"
  start glance-api
  start cinder-api
  start placement-api
  start nova-api
  wait_for "rabbitmq on :$RABBIT_PORT" 300 port_open $RABBIT_PORT
  start cinder-scheduler
  start cinder-volume
  start nova-conductor
  start nova-scheduler
  wait_for "libvirtd answering" 120 virsh -c qemu:///system version
  if ! running nova-compute; then
    tc=$(date -u '+%F %T')
    start nova-compute
  fi
  wait_for "glance-api answering" 180 http_ok http://127.0.0.1:9292
  wait_for "cinder-api answering" 180 http_ok http://127.0.0.1:8776
  wait_for "placement answering" 180 http_ok http://127.0.0.1:8778
  wait_for "nova-api answering" 180 http_ok http://127.0.0.1:8774
  wait_for "neutron-$NEUTRON answering" 180 http_ok "http://127.0.0.1:$NEUTRON_PORT"
  if [ $bootstrap = 1 ]; then
    wait_for "nova-compute registered its node" 300 compute_node_known
    as nova nova-manage cell_v2 discover_hosts --verbose >"$D/log/discover-hosts.log" 2>&1 \
      || die "nova-manage cell_v2 discover_hosts failed ($D/log/discover-hosts.log)"
    log "compute host mapped to cell1"
    /usr/bin/python3 "$HERE/openstack/register.py" flavors >>"$D/log/register.log" 2>&1 \
      || die "creating the flavors failed ($D/log/register.log)"
  fi
  # the scheduler ignores a compute whose last report is older than its start: wait for a fresh heartbeat
  [ -z "$tc" ] || wait_for "nova-compute heartbeat fresh" 300 heartbeat_since "$tc"
  touch "$D/bootstrapped"
  log "ready: started ${#STARTED[@]} service(s): ${STARTED[*]:-none}; $(env_line)"
}

restart() {  # restart SERVICE...: only services of a bootstrapped lab; waits for each to answer again
  local n pid tc="" rv="" url
  [ $# -gt 0 ] || die "restart: name at least one of: ${SERVICES[*]}"
  [ -e "$D/bootstrapped" ] || die "restart: the lab is not up ($D); run '$0 up' first"
  for n in "$@"; do
    [[ " ${SERVICES[*]} " == *" $n "* ]] || die "restart: unknown service '$n' (one of: ${SERVICES[*]})"
  done
  PASSWORD=$(cat "$D/password")
  STARTED=()
  for n in "$@"; do
    pid=$(lab_pid "$n")
    [ -z "$pid" ] || stop_groups "$pid"
    [ "$n" != nova-compute ] || tc=$(date -u '+%F %T')
    [ "$n" != cinder-volume ] || rv=$(volume_reports)
    start "$n"
  done
  for n in "$@"; do
    case $n in
      glance-api) url=http://127.0.0.1:9292 ;; placement-api) url=http://127.0.0.1:8778 ;;
      cinder-api) url=http://127.0.0.1:8776 ;;
      nova-api) url=http://127.0.0.1:8774 ;; keystone) url=http://127.0.0.1:5000/v3 ;;
      neutron-*) url=http://127.0.0.1:$NEUTRON_PORT ;; *) url="" ;;
    esac
    [ -z "$url" ] || wait_for "$n answering" 180 http_ok "$url"
  done
  [ -z "$tc" ] || wait_for "nova-compute heartbeat fresh" 300 heartbeat_since "$tc"
  # cinder-volume heartbeats only once its backend's driver is up (the scheduler places volumes only then)
  [ -z "$rv" ] || wait_for "cinder-volume heartbeat fresh" 180 volume_reported_since "$rv"
  for n in "$@"; do running "$n" || die "restart: $n did not stay up (log: $D/log/$n.out)"; done
  log "restarted: $*"
}

env_line() { echo "export OS_CLIENT_CONFIG_FILE=$D/clouds.yaml OS_CLOUD=$CLOUD"; }

lab_domains() {  # guests of the lab's own libvirtd (nova names them instance-XXXXXXXX)
  running libvirtd || return 0
  timeout 30 virsh -c qemu:///system list --all --name 2>/dev/null | grep '^instance-' || true
}

stop_groups() {  # stop_groups PID...: TERM these process groups together, KILL what is left after 30 s
  local pg i alive
  for pg in "$@"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
  for i in $(seq 300); do
    alive=0
    for pg in "$@"; do
      kill -0 -- "-$pg" 2>/dev/null || continue
      alive=1
      [ "$i" != 300 ] || kill -KILL -- "-$pg" 2>/dev/null || true
    done
    [ $alive = 1 ] || return 0
    sleep 0.1
  done
}

down() {
  local i pid dom f p wave stopped=0 sessions=() pids=() left
  [ -d "$D" ] || { log "nothing to stop ($D does not exist)"; return 0; }
  for dom in $(lab_domains); do
    virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
    virsh -c qemu:///system undefine --nvram "$dom" >/dev/null 2>&1 \
      || virsh -c qemu:///system undefine "$dom" >/dev/null 2>&1 || true
    log "guest $dom destroyed"
  done
  # two waves: the OpenStack services together, then what they use (libvirt, queue, database)
  for wave in "5 ${#SERVICES[@]}" "0 5"; do
    pids=()
    for ((i = ${wave% *}; i < ${wave#* }; i++)); do
      pid=$(lab_pid "${SERVICES[i]}")
      [ -z "$pid" ] || { pids+=("$pid"); sessions+=("$pid"); stopped=$((stopped + 1)); }
    done
    [ ${#pids[@]} = 0 ] || stop_groups "${pids[@]}"
  done
  rm -f "$D"/run/*.pid
  # anything left in one of the lab's sessions (a worker that left the process group), or carrying the marker
  # (a helper that made its own session); zombies are skipped
  left=$(grep -lxF "$MARK=$D" --null-data /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true)
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ " ${sessions[*]} " == *" $(session_of "$p") "* ]] && left="$left $p"
  done
  for p in $left; do
    [ "$p" != $$ ] || continue
    [ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || continue
    kill -KILL "$p" 2>/dev/null && log "killed left-over pid $p"
  done
  # the lab's data outside the state dir, then Debian's /etc files back
  rm -rf /var/lib/nova/instances/* /var/lib/glance/images/* /var/lib/glance/staging/* \
    /var/lib/glance/tasks_work_dir/* /var/lib/cinder/tmp/* /etc/keystone/fernet-keys /etc/keystone/credential-keys
  for f in "${ETC_FILES[@]}"; do
    if [ -e "$D/orig/$f" ]; then cp -a "$D/orig/$f" "/etc/$f"; elif [ -e "$D/orig/$f.absent" ]; then rm -f "/etc/$f"; fi
  done
  rm -rf "$D"
  log "stopped $stopped service(s), removed $D"
}

status() {
  local n pid bad=0 url code
  for n in "${SERVICES[@]}"; do
    pid=$(lab_pid "$n")
    if [ -n "$pid" ]; then echo "$n running pid $pid"; else echo "$n stopped"; bad=1; fi
  done
  for url in keystone=http://127.0.0.1:5000/v3 glance-api=http://127.0.0.1:9292 cinder-api=http://127.0.0.1:8776 \
    placement-api=http://127.0.0.1:8778 nova-api=http://127.0.0.1:8774 \
    "neutron-$NEUTRON=http://127.0.0.1:$NEUTRON_PORT"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${url#*=}" || true)
    echo "${url%%=*} http ${url#*=} $code"
    [ "${code:-000}" != 000 ] || bad=1
  done
  if running mysqld; then
    sql -e "SELECT CONCAT(\`binary\`, ' host ', host, ' last report ', TIMESTAMPDIFF(SECOND, updated_at,
      UTC_TIMESTAMP()), ' s ago') FROM nova.services WHERE deleted=0 AND updated_at IS NOT NULL" 2>/dev/null || true
    sql -e "SELECT CONCAT(\`binary\`, ' host ', host, ' last report ', TIMESTAMPDIFF(SECOND, updated_at,
      UTC_TIMESTAMP()), ' s ago') FROM cinder.services WHERE deleted=0 AND updated_at IS NOT NULL" 2>/dev/null || true
  fi
  [ -e "$D/bootstrapped" ] || { echo "not bootstrapped ($D)"; bad=1; }
  return $bad
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  restart) shift; restart "$@" ;;
  status) status ;;
  env) env_line ;;
  *) die "usage: $0 install|up|down|restart SERVICE...|status|env" ;;
esac
