# TEST profile: the offline Debian 12 base image of @slm-copilot/vm (ensureBaseImage) under TCG.
# slm-vm / runPacker add source_image_url (the cached base qcow2), source_image_checksum (its sha256),
# disk_size (its virtual size), output_directory, seed_dir, ssh_private_key_file and the upload paths.
use_backing_file       = true
qemu_img_create_args   = ["-F", "qcow2"]
accelerator            = "tcg"
cpu_model              = "max"
guest_network_restrict = "on"
cpus                   = 2
memory                 = 1024
ssh_timeout            = "30m"
shutdown_timeout       = "10m"
