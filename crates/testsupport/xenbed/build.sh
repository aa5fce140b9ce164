#!/bin/bash
# Build what vusb's real-Xen test tier boots, from Debian 12 packages only:
# the Xen 4.17 hypervisor, Debian's 6.1 kernel (dom0 and guests), busybox,
# and the guest's PV USB frontend (xen-hcd), which Debian's kernel does not
# build (CONFIG_USB_XEN_HCD is off), compiled from Debian's linux-source
# against the matching linux-headers.
#
#   build.sh [OUT]     OUT: the image cache (default $XENBED_IMG, else
#                      /var/cache/vusb-xenbed); a second run is quick.
#
# Needs root on Debian 12 (apt-get). First run: ~210 MB of packages and a
# minute of compiling. The initramfs images are rebuilt whenever
# dom0-init/domu-init change (a stamp holds their checksum).
set -euo pipefail
OUT=$(realpath -m "${1:-${XENBED_IMG:-/var/cache/vusb-xenbed}}")
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$OUT"/debs
cd "$OUT"
exec 9>"$OUT/.lock"; flock 9          # one build at a time
export DEBIAN_FRONTEND=noninteractive
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
updated=""
apt_update() { [ -n "$updated" ] || { apt-get update -qq; updated=1; }; }
need=()
for p in qemu-system-x86 qemu-system-xen xen-utils-4.17 udev cpio kmod gcc make; do
  installed "$p" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || { apt_update; apt-get install -y -qq "${need[@]}" >/dev/null; }

if [ ! -s kernel-version ]; then
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
  if [ -z "$KPKG" ]; then apt_update; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}'); fi
  [ -n "$KPKG" ] || { echo "build.sh: cannot find Debian's linux-image-6.* package" >&2; exit 1; }
  echo "${KPKG#linux-image-}" > kernel-version
fi
KV=$(cat kernel-version)
fetch() { # PACKAGE GLOB: apt-get download unless a deb matching GLOB is cached
  compgen -G "debs/$2" >/dev/null || (cd debs && { apt-get download -qq "$1" 2>/dev/null || { apt_update; apt-get download -qq "$1"; }; })
}
if [ ! -f xen ] || [ ! -f "vmlinuz-$KV" ] || [ ! -d pkgroot/lib/modules/"$KV" ]; then
  fetch xen-hypervisor-4.17-amd64 'xen-hypervisor-4.17-amd64_*.deb'
  fetch "linux-image-$KV" "linux-image-${KV}_*.deb"
  fetch busybox-static 'busybox-static_*.deb'
  rm -rf pkgroot
  for d in debs/xen-hypervisor-*.deb debs/linux-image-*.deb debs/busybox-static_*.deb; do dpkg -x "$d" pkgroot; done
  zcat pkgroot/boot/xen-4.17-amd64.gz > xen
  cp pkgroot/boot/vmlinuz-"$KV" .
  depmod -b pkgroot "$KV"
fi

# The guest's usbfront, from Debian's kernel source, against Debian's headers.
if [ ! -f xen-hcd.ko ]; then
  installed "linux-headers-$KV" || { apt_update; apt-get install -y -qq "linux-headers-$KV" >/dev/null; }
  fetch linux-source-6.1 'linux-source-6.1_*.deb'
  rm -rf src && mkdir -p src/build
  dpkg-deb --fsys-tarfile debs/linux-source-6.1_*.deb | tar -x -C src ./usr/src/linux-source-6.1.tar.xz
  tar -xJf src/usr/src/linux-source-6.1.tar.xz -C src linux-source-6.1/drivers/usb/host/xen-hcd.c
  cp src/linux-source-6.1/drivers/usb/host/xen-hcd.c src/build/
  echo 'obj-m := xen-hcd.o' > src/build/Kbuild
  make -s -C "/usr/src/linux-headers-$KV" M="$OUT/src/build" modules
  cp src/build/xen-hcd.ko .
  rm -rf src
fi

# The initramfs images: busybox, the listed modules and their dependencies,
# an init. Rebuilt when an init script changes.
stamp=$(cat "$HERE/dom0-init" "$HERE/domu-init" "$HERE/build.sh" | sha256sum | cut -c1-16)
if [ "$(cat initrd-stamp 2>/dev/null)" != "$stamp" ] || [ ! -f dom0-initrd.gz ] || [ ! -f domu-initrd.gz ]; then
  initramfs() { # NAME INIT MODULE...
    local name=$1 init=$2; shift 2
    local d=$OUT/ird-$name; rm -rf "$d"; mkdir -p "$d"/{bin,proc,sys,dev,lib/modules/$KV/extra}
    cp pkgroot/bin/busybox "$d/bin/"
    for a in sh mount umount modprobe insmod cat ls echo sleep poweroff mkdir grep uname dd head chroot date tr readlink; do ln -sf busybox "$d/bin/$a"; done
    local m f
    for m in "$@"; do
      for f in $(modprobe -d pkgroot -S "$KV" --show-depends "$m" | awk '/^insmod/{print $2}'); do
        mkdir -p "$d/$(dirname "${f#*pkgroot/}")"; cp -n "$f" "$d/${f#*pkgroot/}"
      done
    done
    cp pkgroot/lib/modules/"$KV"/modules.{builtin,order,builtin.modinfo} "$d/lib/modules/$KV/"
    [ "$name" = domu ] && cp xen-hcd.ko "$d/lib/modules/$KV/extra/"
    depmod -b "$d" "$KV"
    cp "$init" "$d/init"; chmod +x "$d/init"
    (cd "$d" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/$name-initrd.gz.new"
    mv "$OUT/$name-initrd.gz.new" "$OUT/$name-initrd.gz"
    rm -rf "$d"
  }
  initramfs dom0 "$HERE/dom0-init" xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs \
    9pnet_virtio 9p virtio_pci virtio-rng overlay xhci-pci usb-storage uas sd_mod usbhid
  initramfs domu "$HERE/domu-init" usbcore usb-storage uas sd_mod ehci-pci uhci-hcd xhci-pci usbhid
  echo "$stamp" > initrd-stamp
fi
echo "xenbed: image ready in $OUT (kernel $KV)"
