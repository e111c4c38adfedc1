#!/usr/bin/env bash
# Starts the loopback services the tests use, when they are installed but not
# running. Tests that need one skip with a printed reason when it is absent.
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 2>/dev/null || echo "PostgreSQL: not reachable on 127.0.0.1:5432"
redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null || echo "Redis: not reachable on 127.0.0.1:6379"
exit 0
