# procs.sh: the background processes of a shell test (sourced, bash), shared
# by tests/integration/lib.sh and tests/security/seclib.sh.
#
# Every background process is started through kz_bg, which records its pid;
# the test's EXIT trap calls kz_stop_all, which stops (TERM, then KILL) and
# reaps every one still recorded, whatever way the script ends, then
# kz_finish.  Every wait is bounded.

KZ_PIDS=()
KZ_LAST_PID=

# kz_bg CMD...: starts CMD in the background, remembers its pid in
# KZ_LAST_PID and in the list kz_stop_all stops.
kz_bg() {
    "$@" &
    KZ_LAST_PID=$!
    KZ_PIDS+=("$KZ_LAST_PID")
}

# kz_forget PID: PID was reaped; kz_stop_all need not stop it.
kz_forget() {
    local p keep=()
    for p in "${KZ_PIDS[@]}"; do
        [ "$p" == "$1" ] || keep+=("$p")
    done
    KZ_PIDS=("${keep[@]}")
}

# kz_stop PID [SIG]: signals PID (default TERM), waits for it (bounded:
# 10 s, then KILL) and returns its exit status.
kz_stop() {
    local pid=$1 sig=${2:-TERM} i rc
    kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    rc=$?
    kz_forget "$pid"
    return $rc
}

# kz_stop_all: TERM to every recorded process at once, then waits for each
# (bounded: 5 s per process, then KILL) and reaps it.
kz_stop_all() {
    local pid i
    for pid in "${KZ_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${KZ_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    KZ_PIDS=()
}

# kz_finish RC OK NAME T0 WORK SERVER_LOG: the end of a test's EXIT trap
# (after kz_stop_all).  RC 0 and OK 1: removes WORK and prints PASS;
# otherwise keeps WORK, says so with the last lines of SERVER_LOG (if it
# exists), and turns RC 0 into 1.  Exits with RC.
kz_finish() {
    local rc=$1 ok=$2 name=$3 t0=$4 work=$5 log=$6
    if [ "$rc" -eq 0 ] && [ "$ok" -eq 1 ]; then
        rm -rf "$work"
        printf '[%s] PASS in %ds\n' "$name" "$((SECONDS - t0))" >&2
    else
        [ "$rc" -eq 0 ] && rc=1
        printf '[%s] failed (rc %d) after %ds; work dir kept: %s\n' \
            "$name" "$rc" "$((SECONDS - t0))" "$work" >&2
        if [ -n "$log" ] && [ -f "$log" ]; then
            printf '[%s] last lines of the server log:\n' "$name" >&2
            tail -n 25 "$log" >&2
        fi
    fi
    exit "$rc"
}

# port_busy PORT: whether a TCP socket of this machine uses PORT.
port_busy() { ss -Htan 2>/dev/null | awk '{print $4}' | grep -q "[:.]$1\$"; }
