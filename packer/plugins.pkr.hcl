# Packer >= 1.7 installs the QEMU plugin from this block (`packer init packer/`).
# Kept in its own file because Debian's Packer 1.6.6 (built-in QEMU builder) rejects
# `required_plugins`: slm-vm / runPacker set this file aside when the installed Packer is older than 1.7.
packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = "~> 1"
    }
  }
}
