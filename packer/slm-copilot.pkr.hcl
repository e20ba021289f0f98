# SLM-Copilot appliance image. Production: `packer init packer/ && packer build -var-file=... packer/`
# (driven by `pnpm turbo build:image`); test profile: -var-file=packer/profiles/test.pkrvars.hcl.
# Works with Packer 1.6.6 (Debian) once plugins.pkr.hcl is set aside, and with Packer >= 1.7 + the QEMU plugin.

source "qemu" "slm-copilot" {
  iso_url          = var.source_image_url
  iso_checksum     = var.source_image_checksum
  disk_image       = true
  use_backing_file = var.use_backing_file
  qemu_img_args {
    create = var.qemu_img_create_args
  }

  format             = "qcow2"
  disk_size          = var.disk_size
  disk_interface     = "virtio"
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  disk_compression   = true
  skip_compaction    = false

  accelerator = var.accelerator
  cpus        = var.cpus
  memory      = var.memory
  net_device  = "virtio-net"
  headless    = true
  # Packer's own forward listens on every interface; these bind it (and VNC) to loopback only.
  vnc_bind_address = "127.0.0.1"
  # The mirror disk (var.mirror_disk, made by slm-vm from the mirror directory) is attached read-only with
  # -blockdev + -device: a -drive here would make Packer 1.6.6 drop its own -drive list (main disk + seed CD).
  qemuargs = concat([
    ["-cpu", var.cpu_model],
    ["-netdev", "user,id=user.0,restrict=${var.guest_network_restrict},hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-serial", "file:${var.serial_log}"],
    ], var.mirror_disk == "" ? [] : [
    ["-blockdev", "driver=raw,node-name=slmmirror,read-only=on,file.driver=file,file.read-only=on,file.filename=${replace(var.mirror_disk, ",", ",,")}"],
    # addr=0x1e: a PCI slot after the main disk's, else SeaBIOS tries this (unbootable) disk as the first hard disk.
    ["-device", "virtio-blk-pci,drive=slmmirror,serial=slm-mirror,addr=0x1e"],
  ])

  # Build access: a cidata CD (cloud-init NoCloud on Ubuntu; slm-build-access.service on the Debian test base).
  cd_files = ["${var.seed_dir}/user-data", "${var.seed_dir}/meta-data", "${var.seed_dir}/authorized_keys"]
  cd_label = "cidata"

  communicator           = "ssh"
  ssh_username           = "root"
  ssh_private_key_file   = var.ssh_private_key_file
  ssh_timeout            = var.ssh_timeout
  ssh_handshake_attempts = 200
  boot_wait              = "1s"
  shutdown_command       = "systemctl poweroff"
  shutdown_timeout       = var.shutdown_timeout

  output_directory = var.output_directory
  vm_name          = var.vm_name
}

build {
  sources = ["source.qemu.slm-copilot"]

  provisioner "shell" {
    inline = ["install -d -m 0700 ${var.staging_dir} ${var.staging_dir}/bundle ${var.staging_dir}/appliance"]
  }

  provisioner "file" {
    source      = "${var.bundle_dir}/"
    destination = "${var.staging_dir}/bundle"
  }

  provisioner "file" {
    source      = var.node_runtime_tarball
    destination = "${var.staging_dir}/${basename(var.node_runtime_tarball)}"
  }

  provisioner "file" {
    source      = "${var.appliance_dir}/"
    destination = "${var.staging_dir}/appliance"
  }

  # The mirror disk, read-only at <staging_dir>/mirror (STAGED_MIRROR_DIR in @slm-copilot/vm): the install
  # stage reads <staging_dir>/mirror/<artifact-name>. Without a mirror disk the directory stays absent.
  provisioner "shell" {
    inline = [var.mirror_disk == "" ? "echo 'slm-mirror: no mirror disk'" : join(" && ", [
      "install -d -m 0755 ${var.staging_dir}/mirror",
      "mount -o ro LABEL=slm-mirror ${var.staging_dir}/mirror",
      "echo \"slm-mirror: mounted $(findmnt -no SOURCE,FSTYPE,OPTIONS ${var.staging_dir}/mirror)\"",
    ])]
  }

  provisioner "shell" {
    environment_vars = [
      "SLM_STAGING_DIR=${var.staging_dir}",
      "SLM_MIRROR_DIR=${var.staging_dir}/mirror",
      "SLM_BUNDLE_DIR=${var.staging_dir}/bundle",
      "SLM_NODE_RUNTIME=${var.staging_dir}/${basename(var.node_runtime_tarball)}",
      "SLM_APPLIANCE_DIR=${var.staging_dir}/appliance",
    ]
    inline = [var.install_command]
  }

  provisioner "shell" {
    environment_vars = ["SLM_STAGING_DIR=${var.staging_dir}"]
    script           = "${path.root}/scripts/cleanup.sh"
  }
}
