# vusb-bench xenbed: run inside dom0 of the real Xen test bed. A PV guest
# with a qusb controller (xl starts its QEMU backend); ROUNDS rounds, xl and
# vusb alternating, of: usbdev-attach of the stick, until the guest's kernel
# logs "New USB device found, idVendor=46f4" (dom0 polls the guest's
# console log every 20 ms); usbdev-detach, until dom0's usb-storage is
# bound to the stick again (sysfs polled every 20 ms).
S1=VUSB0001
pv_guest g1 'usbctrl = [ "type=qusb,version=2,ports=4" ]' || { fail g1-created "xl create"; exit 1; }
wait_guest g1 'usb=\[.*usb1' 180 || { fail g1-up "no usbfront"; exit 1; }
pass g1-up
log=$(guest_log g1)
poll() { # TIMEOUT_MS CMD...
  local end=$(( $(now_ms) + $1 )); shift
  while ! "$@" 2>/dev/null; do [ "$(now_ms)" -lt "$end" ] || return 1; sleep 0.02; done
}
for i in $(seq ${ROUNDS:-5}); do
  for tool in xl vusb; do
    b=$(busid_of $S1)
    step "round $i $tool"
    size=$(stat -c %s "$log")
    enumerated() { tail -c +$((size + 1)) "$log" | grep -aq "New USB device found, idVendor=46f4"; }
    if [ $tool = xl ]; then cmd=(xl usbdev-attach g1 hostbus=$(busnum_of $b) hostaddr=$(devnum_of $b));
    else cmd=($VUSB usbdev-attach g1 busid=$b); fi
    t0=$(now_ms)
    "${cmd[@]}" || { fail "$tool-attach-$i" "${cmd[*]}"; continue; }
    t1=$(now_ms)
    poll 120000 enumerated || { fail "$tool-enumerated-$i" "guest never enumerated"; continue; }
    t2=$(now_ms)
    metric "$tool-attach-cmd-ms" $((t1 - t0)); metric "$tool-attach-enum-ms" $((t2 - t0))
    pass "$tool-attach-$i"
    wait_guest g1 "disk=\[VUSB-MARKER" 90
    cp=$(ctrlport_of g1 $b)
    t0=$(now_ms)
    if [ $tool = xl ]; then xl usbdev-detach g1 $cp; else $VUSB usbdev-detach g1 $cp; fi || { fail "$tool-detach-$i" "detach $cp"; continue; }
    t1=$(now_ms)
    poll 120000 driver_is $b usb-storage || { fail "$tool-rebound-$i" "never rebound"; continue; }
    t2=$(now_ms)
    metric "$tool-detach-cmd-ms" $((t1 - t0)); metric "$tool-detach-bound-ms" $((t2 - t0))
    pass "$tool-detach-$i"
    wait_host_disk $S1 60
    sleep 2
  done
done
