#!/bin/sh
# Creates the eddy system user and, on first install, a config with fresh
# keys (eddy init), readable by that user only. Never overwrites a config.
set -e
if ! getent passwd eddy >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/eddy --no-create-home --shell /usr/sbin/nologin eddy 2>/dev/null \
    || adduser --system --home /var/lib/eddy --no-create-home --group eddy
fi
mkdir -p /var/lib/eddy /etc/eddy
chown eddy:eddy /var/lib/eddy
chmod 0750 /var/lib/eddy
if [ ! -e /etc/eddy/eddy.yaml ]; then
  /usr/bin/eddy init --config /etc/eddy/eddy.yaml >/dev/null
  sed -i 's|^data_dir: .*|data_dir: /var/lib/eddy|' /etc/eddy/eddy.yaml
  chown root:eddy /etc/eddy/eddy.yaml
  chmod 0640 /etc/eddy/eddy.yaml
  echo "eddy: wrote /etc/eddy/eddy.yaml with fresh keys; start with: systemctl enable --now eddy"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
