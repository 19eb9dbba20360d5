#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust auth for the tests) and Redis (127.0.0.1:6379)
# are running: start them when installed, install them with apt-get when not.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! command -v pg_isready >/dev/null 2>&1; then
  echo "installing PostgreSQL"; apt_install postgresql postgresql-client
fi
if ! pg_up; then
  echo "starting PostgreSQL"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    hba="/etc/postgresql/$v/main/pg_hba.conf"
    # The tests connect as postgres over TCP without a password.
    if [ -f "$hba" ] && ! grep -q "rindle-tests" "$hba"; then
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust # rindle-tests\nhost all all ::1/128 trust # rindle-tests' "$hba"
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing Redis"; apt_install redis-server
fi
if ! redis_up; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/rindle-redis.log
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379"; exit 1; }
echo "services: PostgreSQL and Redis are up"
