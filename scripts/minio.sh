#!/usr/bin/env bash
# Builds and runs the pinned MinIO server that the S3 tests run against.
#
#   scripts/minio.sh ensure              build .bin/minio if it is missing
#   scripts/minio.sh run -- CMD ARGS...  start a throwaway MinIO, run CMD with
#                                        SLUICE_TEST_MINIO_* and AWS_* set, stop
#                                        MinIO, exit with CMD's status
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINIO_MODULE=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$REPO/.bin/minio
# Throwaway credentials for a server bound to loopback that lives as long as CMD.
ACCESS_KEY=sluice-test
SECRET_KEY=sluice-test-secret
HEALTH_TIMEOUT=60

usage() {
	echo "usage: $0 ensure | run -- CMD [ARGS...]" >&2
	exit 2
}

ensure() {
	if [[ -x $MINIO_BIN ]]; then
		return
	fi
	echo "minio.sh: building $MINIO_MODULE into $REPO/.bin (first time only, takes ~5 min)..." >&2
	GOBIN=$REPO/.bin go install "$MINIO_MODULE"
	echo "minio.sh: built $MINIO_BIN" >&2
}

# free_port prints a TCP port on 127.0.0.1 that was free a moment ago. It asks
# the kernel via python3 when there is one, else probes random high ports.
free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
		return
	fi
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		# A refused connection means nothing listens there.
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# healthy succeeds once MinIO answers its liveness probe (curl if present,
# else a bare HTTP request over bash's /dev/tcp).
healthy() {
	if command -v curl >/dev/null; then
		curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1/minio/health/live"
		return
	fi
	local status
	status=$(
		exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /minio/health/live HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 2 head -n 1 <&3
	) || return 1
	[[ $status == "HTTP/1."?" 200"* ]]
}

run() {
	[[ $# -gt 0 ]] || usage
	ensure

	local workdir port console_port
	workdir=$(mktemp -d -t sluice-minio.XXXXXX)
	mkdir "$workdir/data"
	port=$(free_port)
	console_port=$(free_port)
	while [[ $console_port == "$port" ]]; do console_port=$(free_port); done

	MINIO_PID=
	CMD_PID=
	WORKDIR=$workdir
	trap stop EXIT
	trap 'interrupted INT 130' INT
	trap 'interrupted TERM 143' TERM

	# Own process group: a Ctrl-C reaches CMD, and MinIO stops only after it.
	set -m
	MINIO_ROOT_USER=$ACCESS_KEY MINIO_ROOT_PASSWORD=$SECRET_KEY MINIO_BROWSER=off \
		MINIO_UPDATE=off \
		"$MINIO_BIN" server --quiet --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$console_port" "$workdir/data" \
		>"$workdir/minio.log" 2>&1 &
	MINIO_PID=$!
	set +m

	local deadline=$((SECONDS + HEALTH_TIMEOUT))
	until healthy "$port"; do
		if ! kill -0 "$MINIO_PID" 2>/dev/null; then
			echo "minio.sh: MinIO exited during startup; log tail:" >&2
			tail -n 40 "$workdir/minio.log" >&2 || true
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			echo "minio.sh: MinIO not healthy on 127.0.0.1:$port after ${HEALTH_TIMEOUT}s; log tail:" >&2
			tail -n 40 "$workdir/minio.log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	echo "minio.sh: MinIO ready on 127.0.0.1:$port" >&2

	export SLUICE_TEST_MINIO_ENDPOINT=127.0.0.1:$port
	export SLUICE_TEST_MINIO_ACCESS_KEY=$ACCESS_KEY
	export SLUICE_TEST_MINIO_SECRET_KEY=$SECRET_KEY
	export AWS_ACCESS_KEY_ID=$ACCESS_KEY
	export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
	export AWS_REGION=us-east-1

	# CMD runs in the background in its own process group, so that a signal
	# to this script interrupts the wait below and is forwarded to all of CMD
	# (go test and its test binaries), rather than waiting for CMD to finish.
	set -m
	if [[ -t 0 ]]; then
		"$@" </dev/null & # a background job reading the terminal would stop
	else
		"$@" &
	fi
	CMD_PID=$!
	set +m
	local status
	while :; do
		status=0
		wait "$CMD_PID" || status=$?
		kill -0 "$CMD_PID" 2>/dev/null || break # exited, not just a signal to us
	done
	CMD_PID=
	exit "$status"
}

# interrupted forwards signal $1 to CMD and lets it finish, or exits with
# status $2 if CMD has not started.
interrupted() {
	if [[ -n ${CMD_PID:-} ]]; then
		kill -s "$1" -- "-$CMD_PID" 2>/dev/null || true
		return
	fi
	exit "$2"
}

# stop runs on every exit from run: it stops MinIO (SIGKILL if it has not
# exited 15 s after SIGTERM) and removes its files.
stop() {
	if [[ -n ${MINIO_PID:-} ]]; then
		kill "$MINIO_PID" 2>/dev/null || true
		(sleep 15 && kill -KILL "$MINIO_PID") </dev/null >/dev/null 2>&1 &
		local watchdog=$!
		wait "$MINIO_PID" 2>/dev/null || true
		kill "$watchdog" 2>/dev/null || true
		wait "$watchdog" 2>/dev/null || true
	fi
	if [[ -n ${WORKDIR:-} ]]; then
		rm -rf "$WORKDIR"
	fi
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
ensure)
	[[ $# -eq 0 ]] || usage
	ensure
	;;
run)
	[[ ${1:-} == -- ]] && shift
	run "$@"
	;;
*)
	usage
	;;
esac
