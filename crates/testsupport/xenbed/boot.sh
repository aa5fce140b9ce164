#!/bin/bash
# Boot the real-Xen test bed once: Xen 4.17 under QEMU (TCG: this machine's
# KVM cannot run Xen), dom0 = Debian's 6.1 kernel on this host's own root
# (read-only over 9p), then the scenario BED/run.sh inside dom0.
#
#   boot.sh IMG BED [QEMU ARGS...]
#
# IMG  what build.sh made (dom0 sees it read-only at /xenimg)
# BED  the scenario directory, shared read-write (dom0 sees it at /xenbed);
#      must hold run.sh. Written here: BED/console.log (Xen's and dom0's
#      serial console), BED/l0.qmp (the outer QEMU's QMP socket: plug and
#      unplug the host's USB devices while dom0 runs), and by dom0
#      BED/run.log, BED/run-exit and the guests' console logs.
# QEMU ARGS  the host's USB devices on the outer xHCI "xhci", e.g.
#      -blockdev driver=file,node-name=stick,filename=BED/stick.img
#      -device usb-storage,bus=xhci.0,drive=stick,id=stick,serial=S1
#
# Returns when dom0 powers off (run.sh ended) or after XENBED_TIMEOUT s
# (default 1800; exit 124 then). XENBED_CPU overrides the outer CPU model
# (qemu64,+svm,+npt,+sse4.1,+sse4.2,+popcnt,+ssse3 lets Xen run HVM
# guests; -cpu max crashes dom0), XENBED_MEM the memory in MiB (3072),
# XENBED_DOM0_ARGS more words for dom0's kernel command line (dom0-init
# reads xenbed.udevd=0: no udevd).
set -euo pipefail
IMG=$(realpath "${1:?usage: boot.sh IMG BED [QEMU ARGS...]}"); BED=$(realpath "${2:?}"); shift 2
KV=$(cat "$IMG/kernel-version")
[ -f "$BED/run.sh" ] || { echo "boot.sh: $BED/run.sh missing" >&2; exit 2; }
rm -f "$BED/l0.qmp" "$BED/run-exit"
# XENBED_QEMU: another outer QEMU, unpacked under a root ROOT as
# ROOT/usr/bin/qemu-system-x86_64 with its firmware in ROOT/usr/share.
QEMU=qemu-system-x86_64 QDATA=()
if [ -n "${XENBED_QEMU:-}" ]; then
  QEMU=$XENBED_QEMU; r=$(dirname "$(dirname "$(dirname "$(realpath "$QEMU")")")")
  QDATA=(-L "$r/usr/share/qemu" -L "$r/usr/share/seabios" -L /usr/share/qemu -audio none)
  mkdir -p "$r/usr/lib/x86_64-linux-gnu/qemu"    # its own modules, never 7.2's
  export QEMU_MODULE_DIR="$r/usr/lib/x86_64-linux-gnu/qemu"
fi
exec timeout -k 10 "${XENBED_TIMEOUT:-1800}" "$QEMU" "${QDATA[@]}" \
  -accel "${XENBED_ACCEL:-tcg,thread=multi}" -cpu "${XENBED_CPU:-qemu64,+sse4.1,+sse4.2,+popcnt,+ssse3}" \
  -m "${XENBED_MEM:-3072}" -smp 2 -machine q35 -display none -no-reboot \
  -serial "file:$BED/console.log" -monitor none \
  -qmp "unix:$BED/l0.qmp,server=on,wait=off" \
  -kernel "$IMG/xen" \
  -append "dom0_mem=1536M,max:1536M loglvl=all guest_loglvl=all console=com1 noreboot console_timestamps=boot" \
  -initrd "$IMG/vmlinuz-$KV console=hvc0 earlyprintk=xen ${XENBED_DOM0_ARGS:-},$IMG/dom0-initrd.gz" \
  -device virtio-rng-pci \
  -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$BED",mount_tag=bed,security_model=none \
  -virtfs local,path="$IMG",mount_tag=img,security_model=none,readonly=on \
  -device qemu-xhci,id=xhci "$@"
