#!/usr/bin/env bash
# Issue 12: the RPM installed, started, stopped, killed, upgraded and removed
# under a real systemd. Boots a Debian root (debootstrap, cached under
# target/system-test/) with `systemd-nspawn -b`, installs the RPM there with
# rpm (its scriptlets run for real) and checks the service with systemctl,
# journalctl and curl, run inside the container through nsenter.
#
#   tests/system-test.sh            (what `make system-test` runs; as root)
#   tests/system-test.sh --root-only  only make the cached Debian root (.ci/run
#                                     does it while the other tests build)
#
# Settings: PEZ_RPM=path (the RPM to test; default: `make rpm` builds it),
# SYSTEM_TEST_MIRROR (the Debian mirror for debootstrap; default: the one
# this machine's apt uses), SYSTEM_TEST_SUITE (default: this machine's
# Debian release).
#
# Prints one `ok - ...` or `not ok - ...` line per check, then exactly one
# line `N passed, M failed`; exits 1 if any check failed, 2 when it cannot
# run at all (not root, a tool missing that apt-get cannot install, no
# container). Every wait is bounded; the container (nspawn and its PID 1)
# and the PostgreSQL cluster it starts are stopped by PID on exit, failure
# or not. The journal and the boot log of the last run stay in
# target/system-test/last-run/ for study.
#
# The container has its own network namespace (--private-network): its
# 127.0.0.1:8000 is PEZ's default address and no one else's. PostgreSQL is
# a throwaway cluster on this machine, reached through its Unix socket,
# bind-mounted into the container at /run/pez-pg.
#
# SC2016: the single-quoted $1, $2 are for the inner sh, awk and jq.
# SC2317: the helpers are called through wait_until, verdict and traps.
# SC1091: /etc/os-release is this machine's.
# shellcheck disable=SC2016,SC2317,SC1091
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
CARGO=${CARGO:-cargo}
for variable in $(compgen -v PEZ_); do
    [ "$variable" = PEZ_RPM ] || unset "$variable"
done

ROOT_ONLY=no
case ${1:-} in
    "") ;;
    --root-only) ROOT_ONLY=yes ;;
    *)
        echo "usage: tests/system-test.sh [--root-only]" >&2
        exit 2
        ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "system-test: needs root (systemd-nspawn boots a container)" >&2
    exit 2
fi

# ------------------------------------------------------------ the tools
# debootstrap and systemd-nspawn (Debian's systemd-container), nsenter,
# rpm, rpm2cpio and cpio (the RPMs), ruby (the cookbook's stand-in), jq,
# PostgreSQL's server and psql.
need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v rpm >/dev/null 2>&1 || need+=(rpm)
command -v rpm2cpio >/dev/null 2>&1 || need+=(rpm2cpio)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v ruby >/dev/null 2>&1 || need+=(ruby)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    echo "# installing: ${need[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/dev/null 2>&1; then
        echo "system-test: cannot install ${need[*]} with apt-get" >&2
        exit 2
    fi
fi

ST=$ROOT/target/system-test
LAST=$ST/last-run
mkdir -p "$ST"
rm -rf "$LAST"
mkdir -p "$LAST"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pez-system-test-XXXXXX")
chmod 0755 "$TMP"
NSPAWN_PID=""
CT_PID=""
PG_DIR=""
RUN_ROOT=""

passed=0
failed=0
ok() {
    echo "ok - $1"
    passed=$((passed + 1))
}
# not_ok DESCRIPTION [DETAILS]: details are shown as `#` lines (at most 25).
not_ok() {
    echo "not ok - $1"
    if [ -n "${2:-}" ]; then
        printf '%s\n' "$2" | head -n 25 | sed 's/^/#   /'
    fi
    failed=$((failed + 1))
}
# verdict DESCRIPTION DETAILS CONDITION...: ok when the condition holds.
verdict() {
    local description=$1 details=$2
    shift 2
    if "$@"; then ok "$description"; else not_ok "$description" "$details"; fi
}

# The container's journal and a list of its units, kept for study.
save_logs() {
    [ -n "$CT_PID" ] && kill -0 "$CT_PID" 2>/dev/null || return 0
    ct journalctl --no-pager -o short-precise >"$LAST/journal.txt" 2>&1
    ct systemctl list-units --all --no-pager >"$LAST/units.txt" 2>&1
}
# stop_container: shuts the container down (SIGTERM to nspawn: its systemd
# powers off, stopping every unit). Status 0 when it did so within 15 s;
# otherwise its PID 1 and nspawn are killed.
stop_container() {
    local i status=1
    [ -n "$NSPAWN_PID" ] || return 0
    kill -TERM "$NSPAWN_PID" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
        echo "# the container did not shut down within 15 s: SIGKILL to its PID 1 and nspawn" >&2
        [ -n "$CT_PID" ] && kill -KILL "$CT_PID" 2>/dev/null
        kill -KILL "$NSPAWN_PID" 2>/dev/null
        wait "$NSPAWN_PID" 2>/dev/null
    else
        wait "$NSPAWN_PID" 2>/dev/null
        status=$?
    fi
    NSPAWN_PID=""
    CT_PID=""
    return "$status"
}
cleanup() {
    save_logs
    stop_container
    [ -n "$PG_DIR" ] && "$ROOT/tests/pg-cluster.sh" remove "$PG_DIR" >/dev/null 2>&1
    [ -n "$RUN_ROOT" ] && rm -rf "$RUN_ROOT"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}
# give_up: the test cannot go on for want of its machinery (no root, no
# container): the count so far, and exit 2.
give_up() {
    echo "$passed passed, $failed failed"
    exit 2
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds
# (status 0) or SECONDS have passed (status 1).
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while :; do
        "$@" && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}
now_ms() { date +%s%3N; }
# seconds_of SPAN: whole seconds of a systemd time span (30s, 1min 30s, 2s).
seconds_of() {
    awk '{ t = 0; for (i = 1; i <= NF; i++) { v = $i + 0
        if ($i ~ /min$/) t += v * 60; else if ($i ~ /ms$/) t += v / 1000
        else if ($i ~ /h$/) t += v * 3600; else t += v }
        printf "%d\n", t + 0.999 }' <<<"$1"
}

# ---------------------------------------------------- the Debian root
SUITE=${SYSTEM_TEST_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
# systemd as PID 1, dbus for systemctl, rpm to install the package, curl for
# the checks, libpq5 for the libpq.so.5 pez links (on Amazon Linux yum
# brings libpq; here it is in the image, as --nodeps skips the check).
INCLUDE=systemd,systemd-sysv,dbus,rpm,curl,libpq5
CACHE=$ST/root-$SUITE
if [ ! -f "$CACHE/.pez-system-test" ] || [ "$(cat "$CACHE/.pez-system-test")" != "$INCLUDE" ]; then
    mirror=${SYSTEM_TEST_MIRROR:-}
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's placeholder
    [ -n "$mirror" ] || mirror=$(apt-get indextargets --format '$(REPO_URI)' "Release: $SUITE" "Identifier: Packages" 2>/dev/null | head -n 1)
    echo "# debootstrap $SUITE (${mirror:-the default mirror}) into $CACHE: once, then cached"
    started=$SECONDS
    rm -rf "$CACHE" "$CACHE.new"
    # shellcheck disable=SC2086 # no mirror: debootstrap's default
    if timeout 900 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$CACHE.new" $mirror \
        >"$ST/debootstrap.log" 2>&1; then
        echo "$INCLUDE" >"$CACHE.new/.pez-system-test"
        mv "$CACHE.new" "$CACHE"
        ok "debootstrap made a $SUITE root in $((SECONDS - started)) s (cached in $CACHE)"
    else
        not_ok "debootstrap makes a $SUITE root" "$(tail -n 15 "$ST/debootstrap.log")"
        rm -rf "$CACHE.new"
        give_up
    fi
else
    echo "# the cached $SUITE root: $CACHE"
fi
[ "$ROOT_ONLY" = yes ] && finish

# ----------------------------------------------------------------- RPMs
if [ -n "${PEZ_RPM:-}" ]; then
    RPM_FILE=$PEZ_RPM
else
    echo "# building the RPM: make rpm"
    if make --no-print-directory rpm CARGO="$CARGO" >"$LAST/make-rpm.log" 2>&1; then
        RPM_FILE=$(tail -n 1 "$LAST/make-rpm.log")
    else
        not_ok "make rpm builds the RPM" "$(tail -n 20 "$LAST/make-rpm.log")"
        finish
    fi
fi
[ -f "$RPM_FILE" ] || { not_ok "the RPM to test exists" "no file '$RPM_FILE'"; finish; }
RPM_FILE=$(cd "$(dirname "$RPM_FILE")" && pwd)/$(basename "$RPM_FILE")
V1=$(rpm -qp --qf '%{VERSION}' "$RPM_FILE")

# The next version, as a later release would be: the same binary, a higher
# Version, and a packaged pez.env and unit that changed (so rpm must keep
# an edited pez.env and put the new one beside it as .rpmnew, and systemd
# must be told of the new unit).
V2="$V1.1"
NEXT=$TMP/next
mkdir -p "$NEXT/out"
{ cat packaging/pez.env; printf '\n# (the next version: a new default would be described here)\n'; } >"$NEXT/pez.env"
{ cat systemd/pez.service; printf '# (the next version of the unit)\n'; } >"$NEXT/pez.service"
# The packaged binary itself, taken out of the tested RPM.
(cd "$NEXT" && rpm2cpio "$RPM_FILE" 2>/dev/null | cpio -idm --quiet ./usr/bin/pez)
assets="assets = [
    { source = \"$NEXT/usr/bin/pez\", dest = \"/usr/bin/pez\", mode = \"755\" },
    { source = \"$NEXT/pez.service\", dest = \"/usr/lib/systemd/system/pez.service\", mode = \"644\" },
    { source = \"$NEXT/pez.env\", dest = \"/etc/pez/pez.env\", mode = \"640\", user = \"root\", group = \"pez\", config = \"noreplace\" },
]"
RPM2=$NEXT/out/pez-$V2-1.x86_64.rpm
$CARGO generate-rpm --version >/dev/null 2>&1 || $CARGO install --locked cargo-generate-rpm >"$LAST/install-generate-rpm.log" 2>&1
# cargo-generate-rpm as packaging/build-rpm.sh runs it, with the next
# version's files; the scriptlets are Cargo.toml's, as in every build.
if $CARGO generate-rpm --payload-compress gzip --set-metadata "version = \"$V2\"" --set-metadata "$assets" \
    -o "$NEXT/out/" >"$LAST/build-next-rpm.log" 2>&1 && [ -f "$RPM2" ] &&
    [ "$(rpm --eval "%{lua: print(rpm.vercmp('$V2', '$V1'))}")" = 1 ]; then
    ok "an upgrade RPM of version $V2 (above $V1) with a changed pez.env and unit is built"
else
    not_ok "an upgrade RPM with a higher version is built" "$(tail -n 10 "$LAST/build-next-rpm.log")"
    finish
fi

# Each run boots a fresh copy: the RPM is installed as on a new host.
RUN_ROOT=$ST/run-root
rm -rf "$RUN_ROOT"
cp -a "$CACHE" "$RUN_ROOT"
cp "$RPM_FILE" "$RUN_ROOT/root/pez-$V1.rpm"
cp "$RPM2" "$RUN_ROOT/root/pez-$V2.rpm"

# ------------------------------------------------- PostgreSQL, on the host
PG_DIR=$TMP/pg
if ! tests/pg-cluster.sh start "$PG_DIR" --watch $$ >/dev/null 2>"$LAST/pg.log"; then
    not_ok "a throwaway PostgreSQL starts (tests/pg-cluster.sh)" "$(cat "$LAST/pg.log")"
    finish
fi
PG_PORT=$(cat "$PG_DIR/port")
# The socket directory must be reachable by the pez user in the container.
chmod 0755 "$PG_DIR"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"; }
if ! psql_admin -d postgres -c 'CREATE ROLE pezuser LOGIN' -c 'CREATE DATABASE pez OWNER pezuser' >"$LAST/psql.log" 2>&1; then
    not_ok "PostgreSQL's role and database for pez" "$(cat "$LAST/psql.log")"
    finish
fi

# ------------------------------------------------------------- the boot
find_pid1() {
    CT_PID=$(ps -o pid= --ppid "$NSPAWN_PID" 2>/dev/null | head -n 1 | tr -d ' ')
    [ -n "$CT_PID" ] && [ "$(cat "/proc/$CT_PID/comm" 2>/dev/null)" = systemd ]
}
# ct COMMAND...: runs COMMAND in the container (every namespace of its PID
# 1, its root), with a clean environment, for at most CT_TIMEOUT seconds.
CT_TIMEOUT=30
ct() {
    timeout "$CT_TIMEOUT" nsenter -t "$CT_PID" -a -r -w \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 TERM=dumb "$@"
}
booted() {
    local state
    state=$(ct systemctl is-system-running 2>/dev/null)
    [ "$state" = running ] || [ "$state" = degraded ]
}
# boot LOG: boots the container (NSPAWN_PID, CT_PID) and waits, at most
# 80 s, until it reached multi-user. --register=no and --keep-unit: there
# is no systemd on this host to register with or to ask for a scope.
boot() {
    systemd-nspawn -D "$RUN_ROOT" -b --register=no --keep-unit --private-network \
        --machine="pez-system-test-$$" --bind-ro="$PG_DIR:/run/pez-pg" \
        </dev/null >"$1" 2>&1 &
    NSPAWN_PID=$!
    wait_until 20 find_pid1 && wait_until 60 booted
}
started=$(now_ms)
if boot "$LAST/boot.log"; then
    ok "the container boots to multi-user under systemd-nspawn -b in $(($(now_ms) - started)) ms ($(ct systemctl --version | head -n 1))"
else
    not_ok "the container boots under systemd-nspawn -b" "$(tail -n 20 "$LAST/boot.log")"
    give_up
fi
state=$(ct systemctl is-system-running 2>&1)
[ "$state" = running ] || echo "# note: the container is $state: $(ct systemctl --failed --no-legend --plain | tr '\n' ' ')"

# ------------------------------------------------------------ helpers
# rpm as an operator runs it, with the --nodeps yum would not need: the
# container's rpm database knows none of Debian's packages, so
# shadow-utils, libpq.so.5 and glibc look missing to it (they are there).
rpm_ct() { ct rpm --dbpath /var/lib/rpm "$@"; }
unit() { ct systemctl show pez -p "$1" --value 2>/dev/null; }
main_pid() { unit MainPID; }
active() { [ "$(unit ActiveState)" = active ]; }
# GET on the container's loopback; prints the body, and sets nothing.
get() { ct curl -s --max-time 5 "http://127.0.0.1:8000$1"; }
status_of() { ct curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:8000$1"; }
# The last forward number seen; every check below continues from it.
LAST_NUMBER=0
# take: the next number of forward, into NUMBER.
take() { NUMBER=$(get /v1/forward); }
is_number() { [[ ${1:-} =~ ^[0-9]+$ ]]; }
cursor() { ct journalctl --no-pager -n 0 --show-cursor 2>/dev/null | sed -n 's/^-- cursor: //p'; }
# journal_json CURSOR: every journal entry after CURSOR, one JSON object a
# line. Filtered here with jq, not with journalctl's matches: journalctl 252
# with a match and --after-cursor skips the first matching entry.
journal_json() { ct journalctl --no-pager -o json --after-cursor="$1" 2>/dev/null; }
# The text of a message (journald stores a message that is not UTF-8 as bytes).
JQ_MESSAGE='(.MESSAGE | if type == "array" then implode else . end)'
# journal_since CURSOR: the unit's lines (systemd's about it and pez's).
journal_since() {
    journal_json "$1" | jq -r "select(._SYSTEMD_UNIT == \"pez.service\" or .UNIT == \"pez.service\") | $JQ_MESSAGE"
}
# pez_json_since CURSOR: pez's own entries (its stderr); pez_lines_since: their text.
pez_json_since() { journal_json "$1" | jq -c 'select(.SYSLOG_IDENTIFIER == "pez")'; }
pez_lines_since() { pez_json_since "$1" | jq -r "$JQ_MESSAGE"; }
journal_has() { journal_since "$1" | grep -qE "$2"; }
set_env() { # set_env VARIABLE VALUE: uncomments or replaces the line
    ct sed -i -E "s|^#?$1=.*|$1=$2|" /etc/pez/pez.env
}
unset_env() { ct sed -i -E "s|^$1=(.*)|#$1=\\1|" /etc/pez/pez.env; }

# ------------------------------------------------------------ install
out=$(rpm_ct -i --nodeps "/root/pez-$V1.rpm" 2>&1)
status=$?
if [ $status = 0 ] && [ "$(rpm_ct -q pez 2>/dev/null)" = "pez-$V1-1.x86_64" ]; then
    ok "rpm -i installs pez-$V1-1.x86_64 (scriptlets run for real; --nodeps: see docs/deploy.md)"
else
    not_ok "rpm -i installs the RPM" "exit $status: $out"
    finish
fi
pw=$(ct getent passwd pez)
gr=$(ct getent group pez)
IFS=: read -r _ _ pez_uid pez_gid _ pez_home pez_shell <<<"$pw"
gr_gid=$(cut -d: -f3 <<<"$gr")
verdict "%pre made the pez system user and group (uid $pez_uid, home /var/lib/pez, no login shell)" \
    "passwd: $pw; group: $gr" \
    test -n "$pw" -a -n "$gr" -a "$pez_gid" = "$gr_gid" -a "$pez_home" = /var/lib/pez \
    -a "$pez_shell" = /sbin/nologin -a "${pez_uid:-0}" -lt 1000 -a "${pez_uid:-0}" -gt 0
st=$(ct stat -c '%U:%G %a' /var/lib/pez /etc/pez/pez.env 2>&1 | tr '\n' ' ')
verdict "%post made /var/lib/pez pez:pez 0750; /etc/pez/pez.env is root:pez 0640" "$st" \
    test "$st" = "pez:pez 750 root:pez 640 "
state="$(ct systemctl is-enabled pez 2>&1) $(ct systemctl is-active pez 2>&1)"
verdict "%post told systemd of the unit and neither enabled nor started it ($state)" \
    "$state; LoadState=$(unit LoadState)" \
    test "$state" = "disabled inactive" -a "$(unit LoadState)" = loaded

# ------------------------------------------ enable --now: Type=notify
# Leases are logged at debug: shown for this check only (unset below, in
# effect from the next restart).
set_env PEZ_LOG "info,pez::dispenser::leaser=debug"
from=$(cursor)
started=$(now_ms)
out=$(CT_TIMEOUT=90 ct systemctl enable --now pez 2>&1)
status=$?
took=$(($(now_ms) - started))
state_then=$(unit ActiveState)/$(unit SubState)
take
first=$NUMBER
# Ready means: the start job finished only after pez's first leases were in
# the journal (with Type=simple, "Started" would come before them).
lines=$(journal_since "$from")
started_line=$(grep -n 'Started pez.service' <<<"$lines" | head -n 1 | cut -d: -f1)
lease_lines=$(grep -n -E ': leased ' <<<"$lines" | head -n 2 | cut -d: -f1 | tr '\n' ' ')
last_lease=$(grep -n -E ': leased ' <<<"$lines" | sed -n 2p | cut -d: -f1)
unset_env PEZ_LOG
if [ $status = 0 ] && [ "$state_then" = active/running ] && [ -n "$started_line" ] && [ -n "$last_lease" ] &&
    [ "$last_lease" -lt "$started_line" ]; then
    ok "systemctl enable --now pez returns after $took ms with pez active: its first leases are logged before systemd's 'Started' (Type=notify)"
else
    not_ok "systemctl enable --now pez returns only once pez is ready (first leases before 'Started')" \
        "exit $status: $out; state right after: $state_then; lease lines: $lease_lines; Started at line ${started_line:-none}"$'\n'"$lines"
fi
verdict "curl -s localhost:8000/v1/forward prints 1" "got '$first'" test "$first" = 1
LAST_NUMBER=${first:-0}
status_text=$(ct systemctl status pez --no-pager 2>&1)
verdict "systemctl status pez shows pez's sd_notify status: $(grep -o 'Status: .*' <<<"$status_text")" \
    "$status_text" grep -q 'Status: "serving' <<<"$status_text"
verdict "systemctl status pez: enabled, active (running)" "$status_text" \
    bash -c 'grep -qE "Loaded: loaded .*; enabled;" <<<"$1" && grep -qE "Active: active \(running\)" <<<"$1"' _ "$status_text"
started_lines=$lines

# --------------------------------------------------- user and sandbox
pid=$(main_pid)
proc_uid=$(ct awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
proc_gid=$(ct awk '/^Gid:/ { print $2 }' "/proc/$pid/status")
verdict "the service runs as pez:pez (main pid $pid, uid $proc_uid, gid $proc_gid)" \
    "uid $proc_uid gid $proc_gid; pez is $pez_uid:$pez_gid" \
    test -n "$proc_uid" -a "$proc_uid" = "$pez_uid" -a "$proc_gid" = "$pez_gid"
files=$(ct find /var/lib/pez -mindepth 1 -printf '%u:%g %p\n' 2>&1)
wrong_owner=$(grep -v '^pez:pez ' <<<"$files")
store_line=$(grep -o 'store: [^;]*' <<<"$started_lines" | head -n 1)
verdict "/var/lib/pez is the store ($store_line) and is pez's: $(awk '{ print $2 }' <<<"$files" | tr '\n' ' ')" \
    "$files"$'\n'"$store_line" \
    test -n "$files" -a -z "$wrong_owner" -a "$(ct readlink "/proc/$pid/cwd")" = /var/lib/pez \
    -a "$store_line" = "store: sqlite at /var/lib/pez/pez.sqlite3"
# The probe runs in pez's own mount namespace (the unit's ProtectSystem=,
# PrivateTmp=, ... as set up for it), as the pez user.
probe() { ct nsenter -t "$pid" -m -S "$pez_uid" -G "$pez_gid" -- sh -c "$1" 2>&1; }
out_usr=$(probe 'touch /usr/pez-probe')
out_etc=$(probe 'touch /etc/pez/pez-probe')
out_state=$(probe 'touch /var/lib/pez/probe && rm /var/lib/pez/probe && echo written')
verdict "inside pez's sandbox /usr and /etc are read-only (EROFS) and /var/lib/pez is writable" \
    "/usr: $out_usr; /etc: $out_etc; /var/lib/pez: $out_state" \
    bash -c '[[ $1 == *"Read-only file system"* && $2 == *"Read-only file system"* && $3 == written ]]' _ \
    "$out_usr" "$out_etc" "$out_state"
# Everywhere pez could write: each mount that is read-write in its
# namespace, and each world-writable directory up to two levels below one,
# tried as the pez user. Only its state directory and its private /tmp and
# /var/tmp may take a file.
candidates=$(ct nsenter -t "$pid" -m -- sh -c '
    for mount in $(awk "\$6 ~ /(^|,)rw(,|\$)/ { print \$5 }" /proc/self/mountinfo | sort -u); do
        echo "$mount"
        find "$mount" -xdev -maxdepth 2 -type d -perm -0002 2>/dev/null
    done | sort -u' 2>&1)
# shellcheck disable=SC2086 # one directory per word
writable=$(ct nsenter -t "$pid" -m -S "$pez_uid" -G "$pez_gid" -- sh -c '
    for dir; do
        touch "$dir/.pez-probe" 2>/dev/null && rm -f "$dir/.pez-probe" && echo "$dir"
    done' _ $candidates | tr '\n' ' ')
verdict "of $(wc -w <<<"$candidates") read-write mounts and world-writable directories in pez's sandbox, it can write only to $writable" \
    "candidates: $(tr '\n' ' ' <<<"$candidates")" test "$writable" = "/tmp /var/lib/pez /var/tmp "
homes=$(ct nsenter -t "$pid" -m -- stat -c '%a %n' /home /root 2>&1 | tr '\n' ' ')
verdict "in pez's sandbox /home and /root are empty and mode 000 (ProtectHome=yes)" "$homes" \
    test "$homes" = "0 /home 0 /root "

# ------------------------------------------------ stop, start, restart
from=$(cursor)
old_pid=$(main_pid)
ct systemctl stop pez
stop_result="$(unit ActiveState) $(unit Result) $(unit ExecMainStatus)"
ct systemctl start pez
take
verdict "systemctl stop (pez exits 0: $stop_result), then start: the next number is $NUMBER, the very next one" \
    "last $LAST_NUMBER, then '$NUMBER'; after stop: $stop_result"$'\n'"$(journal_since "$from")" \
    test "$NUMBER" = $((LAST_NUMBER + 1)) -a "$stop_result" = "inactive success 0"
is_number "$NUMBER" && LAST_NUMBER=$NUMBER
old_pid=$(main_pid)
ct systemctl restart pez
take
verdict "systemctl restart: a new process (pid $old_pid -> $(main_pid)), and the next number is the very next one ($NUMBER)" \
    "last $LAST_NUMBER, then '$NUMBER'" test "$NUMBER" = $((LAST_NUMBER + 1)) -a "$(main_pid)" != "$old_pid"
is_number "$NUMBER" && LAST_NUMBER=$NUMBER

# -------------------------------------------------------- pez.env edit
set_env PEZ_MAX_COUNT 5
ct systemctl restart pez
five=$(get '/v2/forward?count=5')
six=$(status_of '/v2/forward?count=6')
want="[$((LAST_NUMBER + 1)), $((LAST_NUMBER + 2)), $((LAST_NUMBER + 3)), $((LAST_NUMBER + 4)), $((LAST_NUMBER + 5))]"
verdict "PEZ_MAX_COUNT=5 in /etc/pez/pez.env takes effect on systemctl restart: count=5 gives $five, count=6 is HTTP $six" \
    "count=5: '$five' (want $want); count=6: HTTP $six" test "$five" = "$want" -a "$six" = 400
[ "$five" = "$want" ] && LAST_NUMBER=$((LAST_NUMBER + 5))

# ----------------------------------------------------- kill -9: Restart=
old_pid=$(main_pid)
restarts=$(unit NRestarts)
from=$(cursor)
started=$(now_ms)
ct sh -c 'kill -KILL "$1"' _ "$old_pid"
back() { active && [ "$(main_pid)" != "$old_pid" ] && [ "$(main_pid)" != 0 ]; }
if wait_until 30 back; then
    took=$(($(now_ms) - started))
    take
    verdict "kill -9 of pez: systemd starts it again in $took ms (Restart=on-failure, NRestarts $restarts -> $(unit NRestarts)); next number $NUMBER > $LAST_NUMBER (a gap, nothing twice)" \
        "last $LAST_NUMBER, then '$NUMBER'" bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt "$2" ]' _ "$NUMBER" "$LAST_NUMBER"
    is_number "$NUMBER" && LAST_NUMBER=$NUMBER
else
    not_ok "kill -9 of pez: systemd starts it again (Restart=on-failure)" \
        "state $(unit ActiveState)/$(unit SubState)"$'\n'"$(journal_since "$from")"
fi

# ---------------------------------------------------- SIGSTOP: watchdog
watchdog_usec=$(unit WatchdogUSec)
watchdog_s=$(seconds_of "$watchdog_usec")
restart_s=$(seconds_of "$(unit RestartUSec)")
old_pid=$(main_pid)
from=$(cursor)
started=$(now_ms)
ct sh -c 'kill -STOP "$1"' _ "$old_pid"
bound=$((watchdog_s + restart_s + 10))
if wait_until "$bound" back; then
    took=$(($(now_ms) - started))
    take
    timed_out=$(journal_since "$from" | grep -c 'Watchdog timeout')
    verdict "a SIGSTOPped pez is killed by the watchdog (WatchdogSec=$watchdog_usec) and running again after $took ms; next number $NUMBER > $LAST_NUMBER" \
        "last $LAST_NUMBER, then '$NUMBER'; 'Watchdog timeout' lines: $timed_out"$'\n'"$(journal_since "$from")" \
        bash -c '[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt "$2" ] && [ "$3" -ge 1 ]' _ "$NUMBER" "$LAST_NUMBER" "$timed_out"
    is_number "$NUMBER" && LAST_NUMBER=$NUMBER
else
    not_ok "a SIGSTOPped pez is killed and restarted by the watchdog within $bound s" \
        "state $(unit ActiveState)/$(unit SubState)"$'\n'"$(journal_since "$from")"
    ct sh -c 'kill -CONT "$1"' _ "$old_pid" 2>/dev/null
fi

# ------------------------------------------- the journal: text and JSON
# One invocation from start to stop, with requests in between: pez's lines
# are one start line, one stop line with a give-back per sequence, none
# per request and none per lease (those are at debug).
ct systemctl stop pez
from=$(cursor)
ct systemctl start pez
for _ in $(seq 30); do get /v1/forward >/dev/null; done
LAST_NUMBER=$(($(get /v1/forward)))
ct systemctl stop pez
lines=$(pez_lines_since "$from")
entries=$(pez_json_since "$from")
multi=$(jq -r 'select((.MESSAGE | type) != "string" or (.MESSAGE | test("\n"))) | .MESSAGE' <<<"$entries" 2>&1)
other=$(grep -vE '\] (pez .* listening on |stopping: |stopped: |[a-z0-9_-]+: gave back )' <<<"$lines")
priorities=$(jq -r '.PRIORITY' <<<"$entries" | sort -u | tr '\n' ' ')
verdict "journalctl -u pez (text): $(wc -l <<<"$lines") lines for a start, 31 requests and a stop, each one entry at priority info: start and stop lines only" \
    "not start/lease/stop: $other; multi-line: $multi; priorities: $priorities"$'\n'"$lines" \
    test -n "$lines" -a -z "$other" -a -z "$multi" -a "$(wc -l <<<"$lines")" -le 12 -a "$priorities" = "6 "
mapfile -t shown <<<"$lines"
printf '#     %s\n' "${shown[@]}"

set_env PEZ_LOG_FORMAT json
from=$(cursor)
ct systemctl start pez
take
is_number "$NUMBER" && LAST_NUMBER=$NUMBER
ct systemctl stop pez
entries=$(pez_json_since "$from")
count=$(jq -s 'length' <<<"$entries")
bad=$(jq -r "$JQ_MESSAGE" <<<"$entries" |
    while IFS= read -r line; do
        jq -e 'type == "object" and has("ts") and has("level") and has("message")' <<<"$line" >/dev/null 2>&1 || echo "$line"
    done)
verdict "with PEZ_LOG_FORMAT=json each of pez's $count journal entries is one JSON object (ts, level, message)" \
    "$bad" test "$count" -ge 3 -a -z "$bad"
unset_env PEZ_LOG_FORMAT

# ---------------------------------------------------------- PostgreSQL
PG_LAST=""
# pez.env pointed at the host's cluster; the database down at start.
embedded_env=$(ct cat /etc/pez/pez.env)
set_env PEZ_DB_HOST /run/pez-pg
set_env PEZ_DB_PORT "$PG_PORT"
set_env PEZ_DB_SSLMODE disable
tests/pg-cluster.sh stop "$PG_DIR" fast
ct systemctl reset-failed pez
from=$(cursor)
started=$(now_ms)
CT_TIMEOUT=90 ct systemctl start pez >"$TMP/start.out" 2>&1 &
starter=$!
waiting() { journal_has "$from" 'not reachable yet'; }
if wait_until 15 waiting; then
    during="$(unit ActiveState)/$(unit SubState)"
    sleep 2 # the database stays down a little longer: start must keep waiting
    still="$(unit ActiveState)"
    kill -0 $starter 2>/dev/null && still+=" (systemctl start still waiting)"
    tests/pg-cluster.sh restart "$PG_DIR"
    db_up=$(now_ms)
    wait "$starter"
    status=$?
    took=$(($(now_ms) - started))
    after_db=$(($(now_ms) - db_up))
    take
    verdict "PostgreSQL down at start: systemctl start waits ($during, then $still) and returns 0 ${after_db} ms after the database is up ($took ms in all); pez is active and serves $NUMBER" \
        "exit $status: $(cat "$TMP/start.out"); $(unit ActiveState); number '$NUMBER'"$'\n'"$(journal_since "$from")" \
        bash -c '[ "$1" = 0 ] && [ "$2" = active ] && [[ $3 =~ ^[0-9]+$ ]] && [[ $4 == activating/start* ]] && [[ $5 == activating* ]]' _ \
        "$status" "$(unit ActiveState)" "$NUMBER" "$during" "$still"
    pg_first=$NUMBER
    ct systemctl restart pez
    take
    verdict "on PostgreSQL too, systemctl restart continues with the very next number ($pg_first, then $NUMBER)" \
        "'$pg_first' then '$NUMBER'" test "$NUMBER" = $((pg_first + 1))
    PG_LAST=$NUMBER
else
    kill "$starter" 2>/dev/null
    wait "$starter" 2>/dev/null
    not_ok "PostgreSQL down at start: pez says it waits" "$(journal_since "$from")"
    tests/pg-cluster.sh restart "$PG_DIR"
fi

# Down for good: the start fails with one clear line. (A shorter retry, so
# the test does not wait the default 30 s.)
ct systemctl stop pez
tests/pg-cluster.sh stop "$PG_DIR" fast
set_env PEZ_DB_STARTUP_TIMEOUT_MS 3000
# The starts above count towards systemd's start limit (5 in 10 s by
# default), which would refuse this one; an operator's reset-failed.
ct systemctl reset-failed pez
from=$(cursor)
started=$(now_ms)
out=$(CT_TIMEOUT=90 ct systemctl start pez 2>&1)
status=$?
took=$(($(now_ms) - started))
state_now="$(unit ActiveState)/$(unit SubState)"
# The failure is pez's one line "pez: ..."; the warning that it waits
# quotes the same cause, but is not a failure.
failures=$(pez_lines_since "$from" | grep -c '^pez: cannot connect to PostgreSQL')
line=$(pez_lines_since "$from" | grep '^pez: cannot connect to PostgreSQL' | head -n 1)
verdict "PostgreSQL down for good: systemctl start fails after $took ms ($state_now) with one line from pez: $line" \
    "exit $status: $out; failure lines: $failures"$'\n'"$(journal_since "$from")" \
    test "$status" != 0 -a "$failures" = 1 -a "$took" -lt 20000
# journald records each line's priority from pez's <N> prefix.
pez_json_since "$from" >"$TMP/failed-start.json"
priorities=$(jq -r "select($JQ_MESSAGE | test(\"not reachable yet|cannot connect\")) | .PRIORITY" "$TMP/failed-start.json" |
    head -n 2 | tr '\n' ' ')
warnings=$(jq -r "select((.PRIORITY | tonumber) <= 4) | $JQ_MESSAGE" "$TMP/failed-start.json" | head -n 2)
verdict "journald has them at their priority (journalctl -p warning shows both): the retry a warning (4), the failure an error (3)" \
    "priorities: $priorities"$'\n'"$warnings" test "$priorities" = "4 3 "
# The unit does not stay failed: Restart=on-failure tries again (RestartSec
# and one more wait apart), so pez comes up by itself once the database does.
tests/pg-cluster.sh restart "$PG_DIR"
db_up=$(now_ms)
if wait_until 30 active; then
    took=$(($(now_ms) - db_up))
    take
    verdict "the unit does not stay failed: Restart=on-failure has pez active $took ms after the database is back, continuing with $NUMBER (after $PG_LAST)" \
        "'$PG_LAST' then '$NUMBER'" test -n "$PG_LAST" -a "$NUMBER" = "$((PG_LAST + 1))"
else
    not_ok "once the database is back, Restart=on-failure brings pez up by itself" \
        "$(unit ActiveState)/$(unit SubState)"$'\n'"$(journal_since "$from" | tail -n 15)"
fi
ct systemctl stop pez
printf '%s\n' "$embedded_env" | ct sh -c 'cat >/etc/pez/pez.env'
ct systemctl start pez
take
verdict "back on the embedded store (the edited pez.env restored): the next number is $NUMBER, the very next one" \
    "last $LAST_NUMBER, then '$NUMBER'" test "$NUMBER" = $((LAST_NUMBER + 1))
is_number "$NUMBER" && LAST_NUMBER=$NUMBER

# ------------------------------------------------- the Chef deploy check
# The check pez::deploy runs after a deploy, as the cookbook declares it.
cat >"$TMP/node.json" <<EOF
{ "pez": { "package": { "rpm_path": "/root/pez-$V1.rpm" }, "verify": { "attempts": 1 } } }
EOF
mkdir -p "$TMP/data_bags"
if ruby tests/chef-harness.rb "$ROOT/chef/cookbooks/pez" "$TMP/node.json" "$TMP/data_bags" deploy "$TMP/resources.jsonl" \
    >"$TMP/chef.out" 2>&1; then
    check_command=$(jq -r -s '[.[] | select(.type == "execute")][0].command // ""' "$TMP/resources.jsonl")
    ct sh -c "$check_command" >"$TMP/check.out" 2>&1
    check_up=$?
    take
    ct systemctl stop pez
    ct sh -c "$check_command" >/dev/null 2>&1
    check_down=$?
    ct systemctl start pez
    verdict "the Chef deploy check ($check_command) passes against the running pez without taking a number (next is $NUMBER), and fails once pez is stopped" \
        "check: exit $check_up ($(cat "$TMP/check.out")); next number '$NUMBER' after $LAST_NUMBER; stopped: exit $check_down" \
        test "$check_up" = 0 -a "$check_down" != 0 -a "$NUMBER" = $((LAST_NUMBER + 1))
    is_number "$NUMBER" && LAST_NUMBER=$NUMBER
else
    not_ok "the cookbook's deploy recipe runs in the stand-in for Chef" "$(cat "$TMP/chef.out")"
fi

# ------------------------------------------------------------- upgrade
old_pid=$(main_pid)
from=$(cursor)
started=$(now_ms)
out=$(CT_TIMEOUT=90 rpm_ct -U --nodeps "/root/pez-$V2.rpm" 2>&1)
status=$?
took=$(($(now_ms) - started))
lines=$(journal_since "$from")
stops=$(grep -c 'Stopping pez.service' <<<"$lines")
starts=$(grep -c 'Started pez.service' <<<"$lines")
take
verdict "rpm -U to $V2 ($took ms): pez restarted once (stopped $stops, started $starts; pid $old_pid -> $(main_pid)), and the next number is the very next one ($NUMBER)" \
    "exit $status: $out; $(rpm_ct -q pez 2>/dev/null); last $LAST_NUMBER, then '$NUMBER'"$'\n'"$lines" \
    test "$status" = 0 -a "$(rpm_ct -q pez 2>/dev/null)" = "pez-$V2-1.x86_64" -a "$stops" = 1 -a "$starts" = 1 \
    -a "$(main_pid)" != "$old_pid" -a "$NUMBER" = $((LAST_NUMBER + 1))
is_number "$NUMBER" && LAST_NUMBER=$NUMBER
graceful=$(grep -E 'Deactivated successfully|Failed with result|code=killed|status=[1-9]' <<<"$lines" | head -n 3)
verdict "the upgrade's stop was graceful: $(head -n 1 <<<"$graceful")" "$graceful" \
    bash -c '! grep -qE "Failed with result|code=killed|status=[1-9]" <<<"$1" && grep -q "Deactivated successfully" <<<"$1"' _ "$graceful"
kept=$(ct grep -x 'PEZ_MAX_COUNT=5' /etc/pez/pez.env)
ct cat /etc/pez/pez.env.rpmnew >"$TMP/rpmnew" 2>/dev/null
verdict "the edited /etc/pez/pez.env is kept (PEZ_MAX_COUNT=5), the new default beside it as pez.env.rpmnew" \
    "kept: '$kept'; $(ct ls -l /etc/pez/)" \
    bash -c '[ -n "$1" ] && cmp -s "$2" "$3"' _ "$kept" "$TMP/rpmnew" "$NEXT/pez.env"
verdict "systemd runs the new unit: NeedDaemonReload=$(unit NeedDaemonReload) after the upgrade's daemon-reload" \
    "$(ct systemctl status pez --no-pager 2>&1 | head -n 5)" test "$(unit NeedDaemonReload)" = no
verdict "pez is still enabled after the upgrade" "$(ct systemctl is-enabled pez 2>&1)" \
    test "$(ct systemctl is-enabled pez 2>&1)" = enabled

# ------------------------------------------------------------- reboot
# The host shuts down and boots again: systemd stops pez gracefully on the
# way down and, as it is enabled, starts it at boot.
save_logs
cp "$LAST/journal.txt" "$LAST/journal-first-boot.txt" 2>/dev/null
started=$(now_ms)
if stop_container; then
    down=$(($(now_ms) - started))
    started=$(now_ms)
    if boot "$LAST/boot-again.log"; then
        took=$(($(now_ms) - started))
        take
        verdict "a shutdown ($down ms) and a boot ($took ms): pez is stopped gracefully and started at boot (enabled), the next number is $NUMBER, the very next one" \
            "last $LAST_NUMBER, then '$NUMBER'; pez is $(unit ActiveState)" test "$NUMBER" = $((LAST_NUMBER + 1))
        is_number "$NUMBER" && LAST_NUMBER=$NUMBER
    else
        not_ok "the container boots again" "$(tail -n 20 "$LAST/boot-again.log")"
        give_up
    fi
else
    not_ok "the container shuts down within 15 s, pez with it" "$(tail -n 20 "$LAST/boot.log")"
    finish
fi

# ------------------------------------------------------------- removal
store_before=$(ct find /var/lib/pez -mindepth 1 -printf '%u:%g %p\n' | sort)
from=$(cursor)
out=$(CT_TIMEOUT=90 rpm_ct -e pez 2>&1)
status=$?
lines=$(journal_since "$from")
wants=$(ct find /etc/systemd/system -name pez.service | wc -l)
verdict "rpm -e: pez is stopped gracefully ($(grep -o 'Deactivated successfully' <<<"$lines" | head -n 1)) and disabled, the package gone" \
    "exit $status: $out; rpm -q: $(rpm_ct -q pez 2>/dev/null); active: $(ct systemctl is-active pez); wants links: $wants"$'\n'"$lines" \
    test "$status" = 0 -a "$wants" = 0 -a "$(ct systemctl is-active pez 2>&1)" = inactive \
    -a "$(grep -c 'Deactivated successfully' <<<"$lines")" = 1
store_after=$(ct find /var/lib/pez -mindepth 1 -printf '%u:%g %p\n' | sort)
kept="$(ct stat -c '%U:%G %a' /var/lib/pez 2>&1); $(ct getent passwd pez | cut -d: -f1); $(ct ls /etc/pez 2>&1 | tr '\n' ' ')"
verdict "after rpm -e, /var/lib/pez and its data stay (pez:pez 750, $(awk '{ print $2 }' <<<"$store_after" | tr '\n' ' ')), and so do the pez user and the edited pez.env, as pez.env.rpmsave" \
    "before: $store_before"$'\n'"after: $store_after"$'\n'"$kept" \
    bash -c 'grep -qx "pez:pez /var/lib/pez/pez.sqlite3" <<<"$1" && [[ $2 == "pez:pez 750; pez; "*pez.env.rpmsave* ]]' _ \
    "$store_after" "$kept"
rpm_ct -i --nodeps "/root/pez-$V2.rpm" >/dev/null 2>&1
CT_TIMEOUT=90 ct systemctl enable --now pez >/dev/null 2>&1
take
verdict "installed again, pez continues from the kept store: the next number is $NUMBER, the very next one" \
    "last $LAST_NUMBER, then '$NUMBER'" test "$NUMBER" = $((LAST_NUMBER + 1))

finish
