# Variables of the SLM-Copilot image build. Defaults are the PRODUCTION profile (Ubuntu 24.04 cloud
# image, KVM, internet); profiles/test.pkrvars.hcl switches to the offline TEST profile (the Debian 12
# base image of @slm-copilot/vm, TCG). Paths are given by the caller (slm-vm / runPacker).

variable "source_image_url" {
  type        = string
  description = "Disk image to start from (qcow2). Production: Ubuntu 24.04 (noble) server cloud image of a dated release (build-image passes the pin of artifacts.lock.json, baseImage.production)."
  default     = "https://cloud-images.ubuntu.com/releases/noble/release-20260926/ubuntu-24.04-server-cloudimg-amd64.img"
}

variable "source_image_checksum" {
  type        = string
  description = "Packer iso_checksum: Ubuntu's published SHA256SUMS beside the image (file:URL), or sha256:<hex> for a local image."
  default     = "file:https://cloud-images.ubuntu.com/releases/noble/release-20260926/SHA256SUMS"
}

variable "use_backing_file" {
  type        = bool
  description = "Build on a qcow2 overlay of the source image instead of a copy (test profile)."
  default     = false
}

variable "qemu_img_create_args" {
  type        = list(string)
  description = "Extra qemu-img create arguments; with use_backing_file QEMU 7 needs the backing format: [\"-F\", \"qcow2\"]."
  default     = []
}

variable "accelerator" {
  type        = string
  description = "QEMU accelerator: kvm in production; tcg where KVM cannot run guests (our test machines)."
  default     = "kvm"
}

variable "cpu_model" {
  type        = string
  description = "QEMU -cpu: host with KVM (the engine sees the real AVX-512/AMX flags), max with TCG."
  default     = "host"
}

variable "guest_network_restrict" {
  type        = string
  description = "QEMU user-network restrict=on|off. off in production (install downloads), on in the offline test profile."
  default     = "off"
}

variable "cpus" {
  type    = number
  default = 4
}

variable "memory" {
  type        = number
  description = "MiB of RAM for the build VM."
  default     = 8192
}

variable "disk_size" {
  type        = string
  description = "Virtual disk size: the Q4_K_M model (~14 GB) + engine + OS with headroom; grown by cloud-init on first boot."
  default     = "30G"
}

variable "output_directory" {
  type        = string
  description = "Where Packer writes the image; must not exist yet."
}

variable "vm_name" {
  type    = string
  default = "slm-copilot.qcow2"
}

variable "seed_dir" {
  type        = string
  description = "Build-access seed (cidata CD): user-data + meta-data for cloud-init, authorized_keys for the Debian test base. Made per build by slm-vm."
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the build's one-off key (its public half is on the seed); removed from the image by scripts/cleanup.sh."
}

variable "ssh_timeout" {
  type        = string
  description = "How long Packer waits for SSH (first boot of a cloud image; minutes under TCG)."
  default     = "45m"
}

variable "bundle_dir" {
  type        = string
  description = "Directory uploaded to <staging_dir>/bundle: the appliance's bundled tasks; contains appliance/install.sh."
}

variable "node_runtime_tarball" {
  type        = string
  description = "Node runtime archive uploaded to <staging_dir>/<its file name> (SLM_NODE_RUNTIME)."
}

variable "appliance_dir" {
  type        = string
  description = "The one-apps appliance directory, uploaded to <staging_dir>/appliance (SLM_APPLIANCE_DIR)."
}

variable "mirror_disk" {
  type        = string
  description = "Raw ext2 image of the artifact mirror (label slm-mirror, made by slm-vm's makeMirrorDisk), attached read-only and mounted at <staging_dir>/mirror; empty = none."
  default     = ""
}

variable "staging_dir" {
  type    = string
  default = "/var/tmp/slm-copilot-build"
}

variable "install_command" {
  type        = string
  description = "Runs as root in the build VM after the uploads, with SLM_STAGING_DIR, SLM_MIRROR_DIR, SLM_BUNDLE_DIR, SLM_NODE_RUNTIME, SLM_APPLIANCE_DIR set."
  default     = "bash \"$SLM_BUNDLE_DIR/appliance/install.sh\" && /etc/one-appliance/service install && sync"
}

variable "serial_log" {
  type        = string
  description = "File receiving the build VM's serial console (debugging)."
  default     = "/dev/null"
}

variable "shutdown_timeout" {
  type    = string
  default = "15m"
}
