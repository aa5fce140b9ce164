# Scenario helpers shared by the xenbed_* tests (run inside dom0 after lib.sh).


# Attach the stick with SERIAL to PV/HVM guest G by the selector given,
# check what the guest's kernel and dom0's kernel see, detach it, check the
# host has it back with the data the guest wrote. Checks are named N-*.
# GUEST_WAIT (s, default 90) bounds the waits for the guest's kernel (an
# HVM guest under nested TCG on a loaded machine needs more).
stick_cycle() { # N G SERIAL MARKER ATTACH-CMD...
  local n=$1 g=$2 s=$3 m=$4; shift 4
  local b; b=$(busid_of "$s") || { fail "$n-present" "no device with serial $s in dom0"; return 1; }
  clear_note "$b"
  mark_guest "$g"
  if run 90 "$@"; then pass "$n-attach"; else fail "$n-attach" "$* failed"; return 1; fi
  check "$n-host-released" wait_for 30 eval "! driver_is $b usb-storage"
  check "$n-guest-reads" wait_guest "$g" "products=\[.*QEMU USB HARDDRIVE.*disk=\[$m" ${GUEST_WAIT:-90}
  check "$n-guest-writes" wait_guest_line "$g" "DOMU WROTE: $m" ${GUEST_WAIT:-30}
  local cp; cp=$(ctrlport_of "$g" "$b")
  [ -n "$cp" ] || { fail "$n-port" "busid $b on no port of $g"; return 1; }
  mark_guest "$g"
  if run 90 $VUSB usbdev-detach "$g" $cp; then pass "$n-detach"; else fail "$n-detach" "usbdev-detach $g $cp failed"; fi
  check "$n-guest-lost" wait_guest "$g" "disk=\[\]" ${GUEST_WAIT:-60}
  check "$n-host-driver-back" wait_host_disk "$s" 60
  b=$(busid_of "$s")
  local note; note=$(disk_note "$b")
  if [[ "$note" == "GUEST-WROTE:$m"* ]]; then pass "$n-data-on-host"; else fail "$n-data-on-host" "offset 512 holds '$note'"; fi
}
