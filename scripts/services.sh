# Sourced by run.sh and test.sh: make sure PostgreSQL and Redis (and, for the tests, RabbitMQ) answer on 127.0.0.1,
# starting (or, as root on Debian, installing) them when they do not.

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
rabbitmq_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "Please install: $*" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

ensure_postgres() {
  pg_up && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql || return 1
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 30); do pg_up && return 0; sleep 1; done
  echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
  return 1
}

ensure_redis() {
  redis_up && return 0
  command -v redis-server >/dev/null || apt_install redis-server || return 1
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 30); do redis_up && return 0; sleep 1; done
  echo "Redis did not start on 127.0.0.1:6379" >&2
  return 1
}

ensure_rabbitmq() {
  rabbitmq_up && return 0
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server || return 1
  # Detached, as the Redis above; its default guest/guest account works from 127.0.0.1.
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 60); do rabbitmq_up && return 0; sleep 1; done
  echo "RabbitMQ did not start on 127.0.0.1:5672" >&2
  return 1
}
