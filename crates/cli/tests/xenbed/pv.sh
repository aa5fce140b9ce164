# PV group (run inside dom0 by crates/cli/tests/xenbed_pv.rs): a PV guest
# created without any USB controller (vusb starts its QEMU backend on
# demand), type=pv without usbback, type=auto, qusb controllers on the
# running guest, every selector with guest reads and writes, xl interop,
# unplug/re-plug, kill -9 + usb-recover, xl destroy.
S1=VUSB0001 M1=VUSB-MARKER-1 S2=VUSB0002 M2=VUSB-MARKER-2

# The command line of process PID with domid D and name N made generic.
generic_cmdline() { # PID D N
  tr '\0' ' ' < /proc/$1/cmdline | sed -e "s/-xen-domid $2 /-xen-domid D /" \
    -e "s/qmp-libxl-$2,/qmp-libxl-D,/" -e "s/qmp-libxenstat-$2,/qmp-libxenstat-D,/" -e "s/-name $3 /-name N /"
}
# The device-model nodes of domain D (names, values, permissions), generic.
generic_dm_nodes() { # D
  xenstore-ls -fp /local/domain/0/device-model/$1 | sed -e "s|/device-model/$1|/device-model/D|" -e "s/\bn$1\b/nD/g"
  xenstore-ls -fp /local/domain/$1/image | sed -e "s|/local/domain/$1/|/local/domain/D/|" -e 's/= "[0-9]*"/= PID/' -e "s/\br$1\b/rD/g"
}
dm_pid() { xenstore-read /local/domain/$1/image/device-model-pid 2>/dev/null; }

step "PV guest g1 created without any USB controller"
if pv_guest g1; then pass g1-created; else fail g1-created "xl create"; exit 1; fi
d1=$(domid_of g1)
if wait_guest g1 'usb=\[\]' 300; then pass g1-up; else fail g1-up "no DOMU line on its console"; exit 1; fi
check g1-no-device-model eval '[ -z "$(dm_pid $d1)" ]'
b1=$(busid_of $S1)
check stick1-on-host driver_is "$b1" usb-storage

step "type=pv without dom0's usbback fails at once"
check no-usbback-in-dom0 eval '[ ! -e /sys/bus/usb/drivers/usbback ]'
xenstore-ls /libxl/$d1 > /tmp/before.txt
# Under TCG (and a loaded machine) starting the debug binary alone takes
# seconds: read it once, then take the fastest of three runs of a command
# that only reads xenstore (usb-list) as the baseline, and the fastest of
# three refusals. libxl would wait 10 s for the backend.
cat $VUSB > /dev/null
tb=999999; t=999999; rc=0
for i in 1 2 3; do
  t0=$(now_ms); $VUSB usb-list g1 > /dev/null; x=$(( $(now_ms) - t0 )); [ $x -lt $tb ] && tb=$x
  t0=$(now_ms); $VUSB usbctrl-attach g1 type=pv > /tmp/pv.out 2>&1 || rc=$((rc + 1)); x=$(( $(now_ms) - t0 )); [ $x -lt $t ] && t=$x
done
cat /tmp/pv.out; metric vusb-usb-list-ms $tb; metric pv-refusal-ms $t
check pv-refused eval '[ $rc -eq 3 ]'
check pv-refused-within-1s eval '[ $((t - tb)) -lt 1000 ]'
check pv-message-names-usbback grep -q "usbback" /tmp/pv.out
xenstore-ls /libxl/$d1 > /tmp/after.txt
check pv-refusal-changes-nothing cmp -s /tmp/before.txt /tmp/after.txt

step "usbdev-attach to the guest without a controller: vusb starts its QEMU backend"
stick_cycle nocontroller g1 $S1 $M1 $VUSB usbdev-attach g1 vendor=46f4 product=0001
q1=$(dm_pid $d1)
check backend-started eval '[ -n "$q1" ] && [ -d /proc/$q1 ]'
check backend-running eval '[ "$(xenstore-read /local/domain/0/device-model/$d1/state)" = running ]'
check backend-qmp-socket test -S /var/run/xen/qmp-libxl-$d1
check auto-type-is-qusb wait_for 30 eval '$VUSB usb-list g1 | grep -Eq "^0 +qusb +0 +4 +2 +8"'
[ -n "$q1" ] && generic_cmdline $q1 $d1 g1 > /tmp/vusb-qemu.cmdline
generic_dm_nodes $d1 > /tmp/vusb-qemu.nodes
cat /tmp/vusb-qemu.cmdline; echo; cat /tmp/vusb-qemu.nodes

step "usbdev-attach by every selector; the guest reads and writes; detach"
stick_cycle serial g1 $S1 $M1 $VUSB usbdev-attach g1 vendor=46f4 product=0001 serial=$S1
b1=$(busid_of $S1)
stick_cycle hostbus g1 $S1 $M1 $VUSB usbdev-attach g1 hostbus=$(busnum_of $b1) hostaddr=$(devnum_of $b1)
b1=$(busid_of $S1)
stick_cycle busid g1 $S1 $M1 $VUSB usbdev-attach g1 busid=$b1
b1=$(busid_of $S1)
stick_cycle portpath g1 $S1 $M1 $VUSB usbdev-attach g1 hostbus=$(busnum_of $b1) portpath=${b1#*-}

step "usbctrl-attach / usbctrl-detach on the running guest (type=auto)"
mark_guest g1
if run 60 $VUSB usbctrl-attach g1 version=1 ports=2; then pass ctrl-attach; else fail ctrl-attach "usbctrl-attach"; fi
check ctrl-auto-is-qusb-connected wait_for 30 eval '$VUSB usb-list g1 | grep -Eq "^1 +qusb +0 +4 +1 +2"'
check ctrl-guest-sees wait_guest g1 'usb=\[.*usb2' 60
check ctrl-same-backend eval '[ "$(dm_pid $d1)" = "$q1" ]'
mark_guest g1
if run 60 $VUSB usbctrl-detach g1 1; then pass ctrl-detach; else fail ctrl-detach "usbctrl-detach"; fi
check ctrl-guest-lost wait_for 60 eval 'guest_state g1 | grep -q STATE && ! guest_state g1 | grep -q usb2'
check ctrl-nodes-gone eval '! xenstore-read /libxl/$d1/device/vusb/1/type'
check ctrl-backend-kept eval '[ -d /proc/$q1 ] && [ "$(dm_pid $d1)" = "$q1" ]'

step "stick 2 hot-plugged into the host (outer QEMU device_add)"
check stick2-plugged host_qmp "$(cat $BED/stick2.add)"
check stick2-on-host wait_host_disk $S2 60

step "xl and vusb on the same host: xl detaches what vusb attached"
# (Seen on QEMU 7.2: after xl attached a second stick to a qusb controller
# vusb had been using, QEMU's xen-usb backend aborted with
# usb_handle_packet: Assertion `dev->state == USB_STATE_DEFAULT' failed.
# xl's attach is therefore checked on guest g2's fresh controller below.)
b1=$(busid_of $S1)
mark_guest g1
if run 60 $VUSB usbdev-attach g1 busid=$b1; then pass interop-vusb-attach; else fail interop-vusb-attach "vusb"; fi
check interop-vusb-guest-reads wait_guest g1 "disk=\[$M1" 90
xl usb-list g1 > /tmp/xl.list; $VUSB usb-list g1 > /tmp/vusb.list; cat /tmp/vusb.list
if cmp -s /tmp/xl.list /tmp/vusb.list && grep -q "Bus 0" /tmp/vusb.list; then pass usb-list-identical-vusb-attached; else fail usb-list-identical-vusb-attached "$(diff /tmp/xl.list /tmp/vusb.list | tr '\n' '|')"; fi
cp1=$(ctrlport_of g1 $b1)
mark_guest g1
if run 60 xl usbdev-detach g1 $cp1; then pass xl-detaches-vusbs; else fail xl-detaches-vusbs "xl usbdev-detach g1 $cp1"; fi
check xl-detach-guest-lost wait_guest g1 'products=\[\]' 60
check xl-detach-host-back wait_host_disk $S1 60
mark_guest g1
check interop-reattach-after-xl-detach run 60 $VUSB usbdev-attach g1 busid=$b1
check interop-reattach-guest-reads wait_guest g1 "disk=\[$M1" 90

cp1=$(ctrlport_of g1 $b1); run 60 $VUSB usbdev-detach g1 $cp1
check interop-final-host-back wait_host_disk $S1 60

step "kill -9 of vusb in the middle of usbdev-attach, then usb-recover"
for delay in 0.05 0.2 0.6; do
  b1=$(busid_of $S1)
  $VUSB usbdev-attach g1 busid=$b1 & p=$!
  sleep $delay; kill -9 $p 2>/dev/null; wait $p 2>/dev/null
  if run 60 $VUSB usb-recover; then pass "kill9-$delay-recover"; else fail "kill9-$delay-recover" "usb-recover"; fi
  cp=$(ctrlport_of g1 $b1)
  if [ -n "$cp" ]; then
    note "kill -9 after ${delay}s: the attach had completed (port $cp)"
    check "kill9-$delay-consistent" wait_guest g1 "disk=\[$M1" 90
    run 60 $VUSB usbdev-detach g1 $cp
  else
    note "kill -9 after ${delay}s: nothing attached"
    check "kill9-$delay-consistent" driver_is $b1 usb-storage
  fi
  check "kill9-$delay-host-back" wait_host_disk $S1 60
done

step "the last qusb controller goes: vusb stops the backend it started"
check lastctrl-detach run 60 $VUSB usbctrl-detach g1 0
check backend-stopped wait_for 15 eval '[ ! -d /proc/$q1 ]'
check backend-nodes-gone eval '[ -z "$(dm_pid $d1)" ] && ! xenstore-read /local/domain/0/device-model/$d1/state'
check backend-sockets-gone eval '[ ! -e /var/run/xen/qmp-libxl-$d1 ]'
check ctrl-attach-restarts-backend run 60 $VUSB usbctrl-attach g1 type=qusb
check ctrl-attach-restarted-running eval '[ -n "$(dm_pid $d1)" ] && [ "$(xenstore-read /local/domain/0/device-model/$d1/state)" = running ]'
check ctrl-attach-guest-connects wait_for 30 eval '$VUSB usb-list g1 | grep -Eq "^0 +qusb +0 +4 "'
q1b=$(dm_pid $d1)
check ctrl-detach-stops-again run 60 $VUSB usbctrl-detach g1 0
check backend-stopped-again wait_for 15 eval '[ ! -d /proc/$q1b ] && [ -z "$(dm_pid $d1)" ]'

step "a guest whose config has a qusb controller: xl starts QEMU; vusb never stops it"
if pv_guest g2 'usbctrl = [ "type=qusb,version=2,ports=8" ]'; then pass g2-created; else fail g2-created "xl create g2"; fi
d2=$(domid_of g2)
check g2-usbfront-up wait_guest g2 'usb=\[.*usb1' 120
q2=$(dm_pid $d2)
generic_cmdline $q2 $d2 g2 > /tmp/xl-qemu.cmdline
generic_dm_nodes $d2 > /tmp/xl-qemu.nodes
if cmp -s /tmp/xl-qemu.cmdline /tmp/vusb-qemu.cmdline; then pass backend-cmdline-as-libxl; else fail backend-cmdline-as-libxl "xl: $(cat /tmp/xl-qemu.cmdline) | vusb: $(cat /tmp/vusb-qemu.cmdline)"; fi
if cmp -s /tmp/xl-qemu.nodes /tmp/vusb-qemu.nodes; then pass backend-nodes-as-libxl; else fail backend-nodes-as-libxl "$(diff /tmp/xl-qemu.nodes /tmp/vusb-qemu.nodes | tr '\n' '|')"; fi
step "xl and vusb on the same host: vusb detaches what xl attached (g2)"
b2=$(busid_of $S2)
mark_guest g2
if run 60 xl usbdev-attach g2 hostbus=$(busnum_of $b2) hostaddr=$(devnum_of $b2); then pass interop-xl-attach; else fail interop-xl-attach "xl"; fi
check interop-xl-guest-reads wait_guest g2 "disk=\[$M2" 90
xl usb-list g2 > /tmp/xl.list; $VUSB usb-list g2 > /tmp/vusb.list; cat /tmp/vusb.list
if cmp -s /tmp/xl.list /tmp/vusb.list && grep -q "Bus 0" /tmp/vusb.list; then pass usb-list-identical-xl-attached; else fail usb-list-identical-xl-attached "$(diff /tmp/xl.list /tmp/vusb.list | tr '\n' '|')"; fi
cp2=$(ctrlport_of g2 $b2)
mark_guest g2
if run 60 $VUSB usbdev-detach g2 $cp2; then pass vusb-detaches-xls; else fail vusb-detaches-xls "vusb usbdev-detach g2 $cp2"; fi
check vusb-detach-guest-lost wait_guest g2 'products=\[\]' 60
check vusb-detach-host-back wait_host_disk $S2 60
check xl-qemu-detach-ctrl run 60 $VUSB usbctrl-detach g2 0
sleep 1
check xl-qemu-kept eval '[ -d /proc/$q2 ] && [ "$(dm_pid $d2)" = "$q2" ]'

step "xl destroy of a guest holding a device"
b1=$(busid_of $S1)
check destroy-attach run 60 $VUSB usbdev-attach g2 busid=$b1
check destroy-guest-reads wait_guest g2 "disk=\[$M1" 90
check destroy-done run 60 xl destroy g2
if wait_host_disk $S1 30; then
  note "after xl destroy the stick was back on usb-storage with nothing more to do"
  pass destroy-host-back
else
  note "after xl destroy the stick was not back on its driver; running vusb usb-recover"
  run 60 $VUSB usb-recover
  check destroy-host-back wait_host_disk $S1 30
fi
b1=$(busid_of $S1)
check destroy-reattach-elsewhere run 60 $VUSB usbdev-attach g1 busid=$b1
check destroy-reattach-guest-reads wait_guest g1 "disk=\[$M1" 90
cp=$(ctrlport_of g1 $b1); run 60 $VUSB usbdev-detach g1 $cp
check destroy-final-host-back wait_host_disk $S1 60

step "stick 1 unplugged while attached (outer QEMU device_del)"
# Last: in one run, after the device vanished under it, QEMU 7.2's xen-usb
# backend aborted on a later attach to that controller
# (libusb_release_interface NO_DEVICE, then usb_handle_packet's assertion),
# which broke the guest's controller for everything after it.
b1=$(busid_of $S1)
mark_guest g1
check unplug-attach run 60 $VUSB usbdev-attach g1 busid=$b1
check unplug-guest-reads wait_guest g1 "disk=\[$M1" 90
mark_guest g1
check unplug-sent unplug stick1
check unplug-host-gone wait_for 30 eval '! busid_of $S1'
check unplug-guest-lost wait_guest g1 'products=\[\]' 60
if run 60 $VUSB usbdev-detach g1 busid=$b1; then pass unplug-detach-by-identity; else fail unplug-detach-by-identity "usbdev-detach g1 busid=$b1"; fi
check unplug-port-free eval '[ -z "$(ctrlport_of g1 $b1)" ]'
check unplug-record-gone eval '! xenstore-ls /vusb/assigned 2>/dev/null | grep -q "$b1"'
check replug-sent host_qmp "$(cat $BED/stick1.add)"
check replug-host-driver wait_host_disk $S1 60
sleep 3
check replug-stays-on-host eval 'b1=$(busid_of $S1) && driver_is $b1 usb-storage && guest_state g1 | grep -q "products=\[\]"'

