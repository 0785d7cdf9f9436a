#!/bin/bash
# Runs inside the system-test VM as root, with systemd as PID 1 (the harness runs it as
# /payload/run.sh; the package is in /payload/icosfl). Prints one line per check:
#   ok <id> <detail>   |   not ok <id> <detail>
# and diagnostics as lines starting with '# '. agent-systemd.test.ts maps the ids to tests.
# Each check depends on the ones before it (one agent, one lifetime), so the order matters.
set -u
export SYSTEMD_COLORS=0 SYSTEMD_URLIFY=0 SYSTEMD_PAGER= LC_ALL=C.UTF-8
PKG=/payload/icosfl
UNIT=icosfl-agent.service
SOCKET=/run/icosfl/agent.sock

# Each result carries the seconds since the script started, to show where the time goes.
ok() { echo "ok $1 [${SECONDS}s] ${*:2}"; }
not_ok() { echo "not ok $1 [${SECONDS}s] ${*:2}"; }
diag() { sed 's/^/# /'; }
prop() { systemctl show -P "$1" "$UNIT"; }
journal() { journalctl -u "$UNIT" --no-pager -o short-monotonic -n "${1:-30}" | diag; }
# The control socket's raw answer; socat, because a Node start costs seconds under emulation.
status_raw() { echo '{"cmd":"status"}' | socat -t 5 - UNIX-CONNECT:"$SOCKET" 2>/dev/null; }
ring_size() { # the ring's sample count from the status answer, -1 when the daemon does not answer
  local n
  n=$(status_raw | grep -o '"ring":{[^}]*}' | grep -o '"size":[0-9]*' | cut -d: -f2)
  echo "${n:--1}"
}
# Waits up to $1 s for the agent to run under a main PID other than $2.
wait_new_pid() {
  local limit=$1 old=$2 i=0 pid
  while [ "$i" -lt "$((limit * 2))" ]; do
    pid=$(prop MainPID)
    if [ "$pid" != 0 ] && [ "$pid" != "$old" ] && [ "$(prop ActiveState)" = active ]; then echo "$pid"; return 0; fi
    sleep 0.5; i=$((i + 1))
  done
  return 1
}
elapsed() { echo $(( $(date +%s%N) / 1000000 - $1 )); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- install with the real script; systemd is PID 1 here, so it enables the unit.
# An admin's config exists beforehand and must survive untouched. It turns training off:
# under software emulation (10-20x slower than hardware) backend calibration keeps the main
# thread busy for tens of seconds, and this test is about the service's lifecycle.
mkdir -p /etc/icosfl
printf '# written by the system test\n[trainer]\nenabled = false\n' >/etc/icosfl/agent.toml
config_sum=$(sha256sum </etc/icosfl/agent.toml)
if out=$("$PKG/scripts/install.sh" --no-start 2>&1) && id icosfl >/dev/null 2>&1 \
  && [ "$(systemctl is-enabled "$UNIT")" = enabled ] && [ "$(sha256sum </etc/icosfl/agent.toml)" = "$config_sum" ]; then
  ok install "user $(id icosfl); existing agent.toml kept"
else
  not_ok install "install.sh failed, left the unit disabled or changed agent.toml"
fi
echo "$out" | diag

# The same mechanisms with shorter clocks, so a watchdog kill takes seconds, not half a minute.
mkdir -p /etc/systemd/system/$UNIT.d
cat >/etc/systemd/system/$UNIT.d/90-system-test.conf <<'EOF'
[Service]
WatchdogSec=10s
TimeoutAbortSec=5s
EOF
systemctl daemon-reload

# ---- start blocks until READY=1: when `systemctl start` returns the unit is running (not
# activating) and the ring already holds a sample, which the daemon stores before READY.
t0=$(now_ms)
if systemctl start "$UNIT"; then
  took=$(elapsed "$t0")
  state="$(prop ActiveState)/$(prop SubState)"
  size=$(ring_size)
  if [ "$state" = active/running ] && [ "$size" -ge 1 ]; then
    ok start-ready "start returned after ${took} ms as $state with $size sample(s) in the ring"
  else
    not_ok start-ready "start returned after ${took} ms but state=$state ring=$size"
  fi
else
  not_ok start-ready "systemctl start failed: $(prop Result)"
  journal 40
fi

# ---- running under its own user, per `systemctl status`
PID=$(prop MainPID)
user=$(ps -o user= -p "$PID" 2>/dev/null | tr -d ' ')
st=$(systemctl status "$UNIT" --no-pager -l -n 5 2>&1)
echo "$st" | diag
if echo "$st" | grep -q 'Active: active (running)' && [ "$user" = icosfl ]; then
  ok own-user "main PID $PID runs as $user"
else
  not_ok own-user "main PID $PID runs as '$user'"
fi

# ---- samples keep arriving
s1=$(ring_size); sleep 4; s2=$(ring_size)
if [ "$s1" -ge 1 ] && [ "$s2" -gt "$s1" ]; then ok samples "ring grew from $s1 to $s2 in 4 s"; else not_ok samples "ring $s1 -> $s2"; fi
# What an operator sees (the CLI finds the socket through the config's runtime_dir default).
RUNTIME_DIRECTORY=/run/icosfl icosfl-agent status 2>&1 | diag

# ---- writes outside the state directory fail. We enter the running agent's own namespaces
# (mount and user namespace, as its uid/gid), i.e. the view of the file system its code has.
uid=$(id -u icosfl) gid=$(id -g icosfl)
# -r -w: take the agent's root and cwd too; setns() alone lands on the namespace's original
# root mount, beneath the read-only bind mounts systemd stacked over it.
as_agent() { nsenter -t "$PID" -m -U -r -w -S "$uid" -G "$gid" -- "$@"; }
denied=() allowed=()
for p in /etc/icosfl/probe /usr/local/lib/icosfl/probe /usr/bin/probe /var/lib/probe /var/log/probe /root/probe /home/probe; do
  if as_agent /bin/sh -c "echo x > $p" 2>/dev/null; then allowed+=("$p"); else denied+=("$p"); fi
done
# Root inside the same mount namespace proves the mounts themselves are read-only, not just
# that the uid lacks permission.
ro_msg=$(nsenter -t "$PID" -m -r -w -- /bin/sh -c 'echo x > /usr/probe; echo x > /etc/icosfl/probe' 2>&1)
state_ok=0; as_agent /bin/sh -c 'echo x > /var/lib/icosfl/probe && rm /var/lib/icosfl/probe' && state_ok=1
tmp_private=0
as_agent /bin/sh -c 'echo x > /tmp/icosfl-probe && echo x > /var/tmp/icosfl-probe' \
  && [ ! -e /tmp/icosfl-probe ] && [ ! -e /var/tmp/icosfl-probe ] && tmp_private=1
cp /bin/true /var/lib/icosfl/probe-exec && chmod 0755 /var/lib/icosfl/probe-exec
noexec=0; as_agent /var/lib/icosfl/probe-exec 2>/dev/null || noexec=1
rm -f /var/lib/icosfl/probe-exec
if [ ${#allowed[@]} -eq 0 ] && [ "$state_ok" = 1 ] && [ "$tmp_private" = 1 ] && [ "$noexec" = 1 ] \
  && [ "$(echo "$ro_msg" | grep -c 'Read-only file system')" = 2 ]; then
  ok writes-confined "denied: ${denied[*]}; /var/lib/icosfl writable, /tmp and /var/tmp private, state dir noexec; root in its mount ns: $(echo $ro_msg)"
else
  not_ok writes-confined "allowed: ${allowed[*]:-none}; state writable=$state_ok tmp private=$tmp_private noexec=$noexec; root: $(echo $ro_msg)"
fi

# ---- a stopped watchdog ping gets it killed and restarted
PID=$(prop MainPID); n0=$(prop NRestarts); r0=$(ring_size)
t0=$(now_ms)
kill -STOP "$PID"
if new=$(wait_new_pid 60 "$PID"); then
  took=$(elapsed "$t0"); n1=$(prop NRestarts)
  if journalctl -u "$UNIT" --no-pager | grep -q 'Watchdog timeout' && [ "$n1" -gt "$n0" ]; then
    ok watchdog "SIGSTOPped PID $PID killed by the watchdog, restarted as $new after ${took} ms (NRestarts $n0 -> $n1)"
  else
    not_ok watchdog "restarted as $new, but no 'Watchdog timeout' in the journal or NRestarts $n0 -> $n1"
  fi
else
  not_ok watchdog "no restart within 60 s of SIGSTOP of $PID"
  kill -CONT "$PID" 2>/dev/null
fi
journal 12

# ---- a crash restarts it with its ring intact (mmap-backed, durable per push)
PID=$(prop MainPID); n0=$(prop NRestarts); before=$(ring_size)
kill -KILL "$PID"
if new=$(wait_new_pid 60 "$PID"); then
  after=$(ring_size); n1=$(prop NRestarts)
  if [ "$before" -ge 1 ] && [ "$after" -ge "$before" ] && [ "$after" -ge "$r0" ] && [ "$n1" -gt "$n0" ]; then
    ok crash-restart "SIGKILL of $PID -> restarted as $new; ring $before -> $after samples (before the watchdog kill: $r0)"
  else
    not_ok crash-restart "restarted as $new but ring $r0 / $before -> $after, NRestarts $n0 -> $n1"
  fi
else
  not_ok crash-restart "no restart within 60 s of SIGKILL of $PID"
fi

# ---- stop is clean: exit status 0, not a kill, within the daemon's 5 s
t0=$(now_ms)
if systemctl stop "$UNIT"; then
  took=$(elapsed "$t0")
  res="Result=$(prop Result) code=$(prop ExecMainCode) status=$(prop ExecMainStatus) state=$(prop ActiveState)"
  # ExecMainCode 1 is CLD_EXITED (a normal exit), as opposed to 2 (killed) or 3 (dumped).
  # The daemon's own SIGTERM path ran (it logs `stopped` after flushing and STOPPING=1).
  stopped_log=$(journalctl -u "$UNIT" --no-pager -n 30 -o cat | grep -c '"msg":"stopped"')
  if [ "$res" = "Result=success code=1 status=0 state=inactive" ] && [ "$took" -lt 5000 ] && [ "$stopped_log" -ge 1 ]; then
    ok stop-clean "stopped in ${took} ms, $res, daemon logged its clean stop"
  else
    not_ok stop-clean "stop took ${took} ms, $res, 'stopped' log lines: $stopped_log"
  fi
else
  not_ok stop-clean "systemctl stop failed"
fi
journal 8

# ---- the coordinator: install.sh --coordinator makes its keys and config, enables and starts
# `serve` under its hardened unit (DynamicUser=, ProtectSystem=strict, Type=notify); it must
# reach active (READY=1 after its embedded broker and control socket are up) and answer status.
C=icosfl-coordinator.service
CSOCK=/run/icosfl-coordinator/coordinator.sock
"$PKG/scripts/install.sh" --coordinator 2>&1 | diag
for _ in $(seq 240); do [ "$(systemctl show -P ActiveState "$C")" = activating ] || break; sleep 0.5; done
cstate=$(systemctl show -P ActiveState "$C")
canswer=$(echo '{"cmd":"status"}' | socat -t 5 - UNIX-CONNECT:"$CSOCK" 2>/dev/null)
if [ "$cstate" = active ] && echo "$canswer" | grep -q '"ready":true' && [ -f /etc/icosfl/coordinator.json ] && [ "$(stat -c %a /etc/icosfl/agent.json)" = 600 ]; then
  # Signed: the root-only 0600 key reached the dynamic user as a LoadCredential= credential.
  if journalctl -u "$C" --no-pager -o cat | grep -q 'message signing on' && [ "$(stat -c %a /etc/icosfl/coordinator-signing.key)" = 600 ]; then
    ok coordinator-signed "the coordinator logged 'message signing on' with /etc/icosfl/coordinator-signing.key root 0600 ($(systemctl show -P LoadCredential "$C"))"
  else
    not_ok coordinator-signed "no 'message signing on' in its log; key mode $(stat -c '%U %a' /etc/icosfl/coordinator-signing.key 2>&1)"
  fi
  # Roles: each socket's group from ExecStartPost=; a user of a group asks over its socket.
  OSOCK=/run/icosfl-coordinator/operator.sock
  vgid=$(getent group icosfl-viewers | cut -d: -f3)
  ogid=$(getent group icosfl-operators | cut -d: -f3)
  as_gid() { local g=$1; shift; setpriv --reuid=65534 --regid=65534 --groups="$g" "$@"; }
  ask() { echo "{\"cmd\":\"$2\"}" | as_gid "$1" socat -t 5 - UNIX-CONNECT:"$3" 2>&1; }
  socks="$(stat -c '%n %a %G' "$CSOCK" "$OSOCK" | tr '\n' ' ')"
  v_status=$(ask "$vgid" status "$CSOCK")
  v_pause=$(ask "$vgid" pause "$CSOCK")
  v_osock=$(ask "$vgid" pause "$OSOCK")
  v_cli=$(as_gid "$vgid" /usr/local/bin/icosfl-coordinator pause 2>&1); v_cli_rc=$?
  o_pause=$(ask "$ogid" pause "$OSOCK")
  o_status=$(ask "$vgid" status "$CSOCK")
  o_resume=$(ask "$ogid" resume "$OSOCK")
  none=$(ask 65534 status "$CSOCK")
  if echo "$v_status" | grep -q '"ready":true' && echo "$v_pause" | grep -q '"code":"CONTROL_FORBIDDEN"' && ! echo "$v_osock" | grep -q '"ok"' \
    && [ "$v_cli_rc" = 77 ] && echo "$o_pause" | grep -q '"ok":true' && echo "$o_status" | grep -q '"paused":{' \
    && echo "$o_resume" | grep -q '"paused":null' && ! echo "$none" | grep -q '"ok"'; then
    ok coordinator-roles "viewer: status answered, pause CONTROL_FORBIDDEN, operator.sock refused, CLI pause exit 77; operator: pause, status paused, resume; no group: refused ($socks)"
  else
    not_ok coordinator-roles "sockets: $socks; viewer status: ${v_status:0:80}; viewer pause: ${v_pause:0:200}; viewer on operator.sock: ${v_osock:0:120}; CLI exit $v_cli_rc ${v_cli:0:200}; operator pause: ${o_pause:0:120}; status: ${o_status:0:60}; resume: ${o_resume:0:120}; no group: ${none:0:120}"
  fi
  systemctl stop "$C"
  cres="Result=$(systemctl show -P Result "$C") status=$(systemctl show -P ExecMainStatus "$C")"
  if [ "$cres" = "Result=success status=0" ]; then
    ok coordinator-sandbox "icosfl-coordinator serve ran under its unit (active, status answered) and stopped cleanly: $cres"
  else
    not_ok coordinator-sandbox "serve ran, but the stop ended $cres"
  fi
else
  not_ok coordinator-sandbox "state $cstate, status answer: ${canswer:-none}"
fi
journalctl -u "$C" --no-pager -o cat -n 12 | diag
"$PKG/scripts/install.sh" --uninstall --coordinator 2>&1 | diag

# ---- uninstall keeps config and state; --purge removes them and the user
"$PKG/scripts/install.sh" --uninstall 2>&1 | diag
load=$(prop LoadState)
if [ "$load" = not-found ] && [ -d /var/lib/icosfl ] && [ -f /etc/icosfl/agent.toml ] && id icosfl >/dev/null 2>&1; then
  "$PKG/scripts/install.sh" --uninstall --purge 2>&1 | diag
  if [ ! -e /var/lib/icosfl ] && [ ! -e /etc/icosfl ] && ! id icosfl >/dev/null 2>&1 && [ ! -e /usr/local/bin/icosfl-agent ]; then
    ok uninstall "unit gone, state kept; --purge removed state, config and user"
  else
    not_ok uninstall "--purge left state, config, user or the binary behind"
  fi
else
  not_ok uninstall "after --uninstall: LoadState=$load, state/config/user kept?"
fi
