# Shared pieces of the bench/ scripts (sourced, not run): tools, servers,
# CPU accounting, medians. A script that sources this defines `die` and
# `server_pid` (empty when no server runs).

# need_apt TOOL PACKAGE: installs PACKAGE with apt-get when TOOL is missing.
need_apt() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "== installing $2 (for $1)"
    if [[ -z ${apt_updated:-} ]]; then
        apt-get update >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "$1 is still missing after installing $2"
}

# lock_version CRATE LOCKFILE: the version of CRATE in a Cargo.lock.
lock_version() {
    awk -v n="$1" '$0 == "name = \"" n "\"" { found = 1; next }
                   found && /^version = / { gsub(/"/, "", $3); print $3; exit }' "$2"
}

# A TCP port on 127.0.0.1 that was free a moment ago (for servers that
# cannot report the one the OS chose).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_listening PID LOG: prints the port of the first
# "Listening on http[s]://127.0.0.1:PORT" line in LOG (5 s at most).
wait_for_listening() {
    local pid=$1 log=$2 port
    for _ in $(seq 100); do
        port=$(sed -n 's|^Listening on [a-z]*://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n 1)
        [[ -n "$port" ]] && { echo "$port"; return 0; }
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# wait_for_accept PORT: until 127.0.0.1:PORT accepts (5 s at most).
wait_for_accept() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# tree_pids PID: PID and its descendants.
tree_pids() {
    local child
    echo "$1"
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        tree_pids "$child"
    done
}

# utime + stime of PID and its descendants (all threads), in clock ticks.
# A descendant that exits mid-run takes its ticks with it (they reach the
# parent's cutime only when reaped): fine for servers whose workers live
# as long as they do.
tree_cpu_ticks() {
    local pid stat total=0
    for pid in $(tree_pids "$1"); do
        stat=$(<"/proc/$pid/stat") 2>/dev/null || continue
        # Field 2 (comm) is in parentheses and may hold spaces: cut after ')'.
        stat=${stat##*) }
        # Now field 3 (state) is $1, so utime (14) is $12 and stime (15) is $13.
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$stat")))
    done
    echo "$total"
}

# Stops the server in server_pid and waits (10 s at most) until its
# descendants are gone too.
stop_server() {
    [[ -n "${server_pid:-}" ]] || return 0
    local pids pid
    pids=$(tree_pids "$server_pid")
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    for pid in $pids; do
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
    done
    server_pid=
}

# median_row RUNS: the line of RUNS (one run per line) with the median
# third column (CPU per unit of work).
median_row() {
    local n
    n=$(wc -l <"$1")
    sort -g -k3,3 "$1" | awk -v m="$(( (n + 1) / 2 ))" 'NR == m'
}

# spread_of RUNS: (max - min) / median of the third column, in percent.
spread_of() {
    sort -g -k3,3 "$1" | awk '
        NR == 1 { lo = $3 } { hi = $3; v[NR] = $3 }
        END { printf "%.0f", 100 * (hi - lo) / v[int((NR + 1) / 2)] }'
}

# ratio A B: A / B to two places.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
