#!/bin/sh
# Stops the service before its files go; keeps config and data.
set -e
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl stop eddy.service >/dev/null 2>&1 || true
  systemctl disable eddy.service >/dev/null 2>&1 || true
fi
