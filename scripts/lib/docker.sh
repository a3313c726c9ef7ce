# scripts/lib/docker.sh -- a Docker engine for the project's scripts: installs
# docker.io, docker-compose (Compose v1) and debootstrap when missing, starts
# dockerd in the background when no engine answers, and stops only a dockerd
# it started itself, by the PID it recorded (never by name).
# Source it after scripts/lib/common.sh; do not run it.
#
#   spate_docker_up [SECONDS]   make `docker info` answer (default deadline 60 s);
#                               sets SPATE_DOCKERD_STARTED=1 when it started one
#   spate_docker_down           stop the dockerd spate_docker_up started, if any
# shellcheck shell=bash

SPATE_DOCKER_PACKAGES=(docker.io docker-compose debootstrap)
SPATE_DOCKERD_LOG="${SPATE_DOCKERD_LOG:-/tmp/spate-dockerd.log}"
SPATE_DOCKERD_PIDFILE="${SPATE_DOCKERD_PIDFILE:-/tmp/spate-dockerd.pid}"
SPATE_DOCKERD_STARTED=0

spate_docker_up() {
  local wait_s="${1:-60}"
  spate_install "${SPATE_DOCKER_PACKAGES[@]}" || return 1
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "spate: no Docker engine answers and starting dockerd needs root: start it (sudo dockerd &), or add yourself to the docker group" >&2
    return 1
  fi
  say "starting dockerd in the background (log: $SPATE_DOCKERD_LOG)"
  # setsid: its own session, so a Ctrl-C meant for the script does not reach it
  # mid-start; the script stops it by PID in spate_docker_down.
  setsid dockerd >"$SPATE_DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$SPATE_DOCKERD_PIDFILE"
  SPATE_DOCKERD_STARTED=1
  local deadline=$((SECONDS + wait_s))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$SPATE_DOCKERD_LOG" >&2
      echo "spate: dockerd exited while starting (log: $SPATE_DOCKERD_LOG)" >&2
      rm -f "$SPATE_DOCKERD_PIDFILE"
      SPATE_DOCKERD_STARTED=0
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -20 "$SPATE_DOCKERD_LOG" >&2
      echo "spate: dockerd (pid $pid) did not answer within ${wait_s}s (log: $SPATE_DOCKERD_LOG)" >&2
      spate_docker_down
      return 1
    fi
    sleep 0.2
  done
  say "dockerd answers (pid $pid, $((wait_s - (deadline - SECONDS)))s)"
}

spate_docker_down() {
  [ "$SPATE_DOCKERD_STARTED" -eq 1 ] || return 0
  local pid
  pid=$(cat "$SPATE_DOCKERD_PIDFILE" 2>/dev/null) || pid=""
  SPATE_DOCKERD_STARTED=0
  rm -f "$SPATE_DOCKERD_PIDFILE"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  say "stopping the dockerd this script started (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  # dockerd stops its containers (10 s grace each, in parallel) and its
  # containerd before it exits.
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "spate: dockerd (pid $pid) still runs 30s after SIGTERM: sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
}
