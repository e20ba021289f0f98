#!/bin/sh
# SLM-Copilot image build, last provisioner: removes everything that belongs to this one build so that
# every VM made from the image gets its own identity and only the keys its own context gives it.
# Runs as root in the build VM (Ubuntu 24.04 in production, the Debian 12 base image in the test profile).
set -eu
say() { echo "slm-cleanup: $*"; }

# Recorded in the build log so that tests can prove the image's VMs use other host keys.
for f in /etc/ssh/ssh_host_ed25519_key.pub; do
  [ -f "$f" ] && say "build VM host key: $(ssh-keygen -lf "$f")"
done

# Staging area of the uploads (bundle, Node runtime, appliance) and the read-only mirror disk mounted in it.
if [ -n "${SLM_STAGING_DIR:-}" ] && [ "$SLM_STAGING_DIR" != "/" ]; then
  if mountpoint -q "$SLM_STAGING_DIR/mirror" 2>/dev/null; then
    umount "$SLM_STAGING_DIR/mirror"
    say "unmounted the mirror disk"
  fi
  rm -rf "$SLM_STAGING_DIR"
  say "removed $SLM_STAGING_DIR"
fi

# SSH host keys: regenerated on each VM's first sshd start (drop-in below).
mkdir -p /etc/systemd/system/ssh.service.d
cat > /etc/systemd/system/ssh.service.d/10-slm-host-keys.conf <<'UNIT'
# SLM-Copilot: images ship without SSH host keys; every VM generates its own on first start.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
rm -f /etc/ssh/ssh_host_*
say "removed SSH host keys"

# cloud-init: state, logs and the seed of this build (the next boot is a first boot).
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
  rm -f /etc/netplan/50-cloud-init.yaml
  say "cloud-init cleaned"
fi

# The build's own authorized key, and any password: VMs get access from their context only.
rm -f /root/.ssh/authorized_keys /root/.ssh/authorized_keys2
for home in /home/*; do
  [ -d "$home/.ssh" ] && rm -f "$home/.ssh/authorized_keys" "$home/.ssh/authorized_keys2"
done
usermod -p '*' root
awk -F: '$3 >= 1000 && $3 < 65534 { print $1 }' /etc/passwd | while read -r user; do usermod -p '*' "$user"; done
say "removed authorized keys and passwords"

# Machine identity: an empty machine-id makes systemd treat the next boot as a first boot.
truncate -s 0 /etc/machine-id
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi
rm -f /var/lib/systemd/random-seed /var/lib/dhcp/*.leases /var/lib/NetworkManager/*.lease 2>/dev/null || true
say "reset machine-id, random seed and DHCP leases"

# Shell history, logs, caches, temp files.
rm -f /root/.bash_history /home/*/.bash_history /root/.lesshst /root/.viminfo
unset HISTFILE
if command -v apt-get >/dev/null 2>&1; then apt-get clean; fi
rm -rf /var/lib/apt/lists/*
if command -v journalctl >/dev/null 2>&1; then journalctl --rotate >/dev/null 2>&1 || true; journalctl --vacuum-time=1s >/dev/null 2>&1 || true; fi
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
find /tmp /var/tmp -mindepth 1 -maxdepth 1 ! -name 'script_*.sh' -exec rm -rf {} + 2>/dev/null || true
say "removed history, logs, caches and temp files"

# Free blocks back to the image so the compressed qcow2 stays small.
fstrim -av 2>/dev/null || true
sync
say "done"
