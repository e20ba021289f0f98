#!/bin/sh
# Places the SLM-Copilot bundle into the image being built (run as root by the Packer provisioner
# from the uploaded bundle directory), then runs the one-apps install stage: through the upstream
# framework when it is in the image, else through our own runner (same contract).
set -eu
bundle=$(cd "$(dirname "$0")" && pwd)
opt=/opt/slm-copilot
install -d -m 0755 "$opt" "$opt/bin" "$opt/node/bin" "$opt/templates"
install -m 0755 "$bundle"/bin/* "$opt/bin/"
install -m 0755 "$bundle/node/bin/node" "$opt/node/bin/node"
install -m 0644 "$bundle"/templates/* "$opt/templates/"
install -m 0644 "$bundle/build-plan.json" "$opt/build-plan.json"
install -m 0644 "$bundle/manifest.json" "$opt/bundle-manifest.json"
# `slm-copilot check` (the self-check) on PATH, run by the image's own Node
printf '#!/bin/sh\nexec %s/node/bin/node %s/bin/slm-copilot-service.mjs "$@"\n' "$opt" "$opt" >/usr/local/bin/slm-copilot
chmod 0755 /usr/local/bin/slm-copilot
if [ -x /etc/one-appliance/service ]; then
    install -D -m 0644 "$bundle/appliance/appliance.sh" /etc/one-appliance/service.d/appliance.sh
    /etc/one-appliance/service install
else
    # without one-context: our boot unit, and a CONTEXT CD swapped on the running VM applied by udev
    # (one-context has its own rule for that: see the README, "Changing the configuration of a running VM")
    install -m 0644 "$bundle/appliance/slm-copilot-context.service" \
        /etc/systemd/system/slm-copilot-context.service
    install -m 0644 "$bundle/appliance/slm-copilot-reconfigure.service" \
        /etc/systemd/system/slm-copilot-reconfigure.service
    install -D -m 0644 "$bundle/appliance/65-slm-copilot-context.rules" /etc/udev/rules.d/65-slm-copilot-context.rules
    systemctl enable slm-copilot-context.service
    "$opt/node/bin/node" "$opt/bin/slm-copilot-service.mjs" install --plan "$opt/build-plan.json"
fi
