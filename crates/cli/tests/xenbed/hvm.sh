# HVM group (run inside dom0 by crates/cli/tests/xenbed_hvm.rs): devicemodel
# controllers on an HVM guest whose device model is Debian's
# qemu-system-xen; the guest's own uhci/ehci/xhci drivers see them.
S1=VUSB0001 M1=VUSB-MARKER-1
# Waits for the guest's kernel: under nested TCG (Xen under QEMU, the HVM
# guest under Xen) on a loaded 2-core machine a stick took more than the
# PV group's 90 s to be read; a wait ends as soon as its condition holds.
# Dom0 polls every 0.5 s: its polling processes take CPU from the guest.
W=300 GUEST_WAIT=300 POLL=0.5
# The guest's root hubs (usb1, usb2, ...) in its latest state line. The
# number is required: "usb=[]" itself must not count as one.
roothubs() { guest_state "$1" | grep -oE 'usb[0-9]+' | sort -u | wc -l; }
emulated_port() { # G TYPE -> "C P" from vusb usb-list
  $VUSB usb-list "$1" | awk -v t="$2" '/^[0-9]/{c=$1} $0 ~ "Port [0-9]+: Emulated "t {sub(":","",$2); print c, $2; exit}'
}

step "HVM guest h1 created without any USB controller"
if hvm_guest h1; then pass h1-created; else fail h1-created "xl create"; exit 1; fi
if wait_guest h1 'DOMU STATE' 900; then pass h1-up; else fail h1-up "no DOMU line on its serial console"; exit 1; fi
h1_domid=$(domid_of h1)
check stick1-on-host wait_host_disk $S1 30

step "usbdev-attach without a controller: a working devicemodel controller is created (libxl bug A1)"
stick_cycle auto h1 $S1 $M1 $VUSB usbdev-attach h1 vendor=46f4 product=0001
check auto-ctrl-ehci eval '$VUSB usb-list h1 | grep -Eq "^0 +devicemodel +0 +0 +2 +6"'

step "usb-list identical to xl; xl and vusb on the same HVM guest"
b1=$(busid_of $S1)
mark_guest h1
check interop-vusb-attach run 90 $VUSB usbdev-attach h1 busid=$b1
check interop-guest-reads wait_guest h1 "disk=\[$M1" $W
xl usb-list h1 > /tmp/xl.list; $VUSB usb-list h1 > /tmp/vusb.list; cat /tmp/vusb.list
if cmp -s /tmp/xl.list /tmp/vusb.list && grep -q "Bus 0" /tmp/vusb.list; then pass usb-list-identical; else fail usb-list-identical "$(diff /tmp/xl.list /tmp/vusb.list | tr '\n' '|')"; fi
cp=$(ctrlport_of h1 $b1)
if run 90 xl usbdev-detach h1 $cp; then pass xl-detaches-vusbs; else fail xl-detaches-vusbs "xl usbdev-detach h1 $cp"; fi
check xl-detach-host-back wait_host_disk $S1 60
b1=$(busid_of $S1)
mark_guest h1
if run 90 xl usbdev-attach h1 hostbus=$(busnum_of $b1) hostaddr=$(devnum_of $b1); then pass interop-xl-attach; else fail interop-xl-attach "xl"; fi
check interop-xl-guest-reads wait_guest h1 "disk=\[$M1" $W
xl usb-list h1 > /tmp/xl.list; $VUSB usb-list h1 > /tmp/vusb.list
if cmp -s /tmp/xl.list /tmp/vusb.list; then pass usb-list-identical-xl-attached; else fail usb-list-identical-xl-attached "$(diff /tmp/xl.list /tmp/vusb.list | tr '\n' '|')"; fi
cp=$(ctrlport_of h1 $b1)
if run 90 $VUSB usbdev-detach h1 $cp; then pass vusb-detaches-xls; else fail vusb-detaches-xls "vusb usbdev-detach h1 $cp"; fi
check vusb-detach-host-back wait_host_disk $S1 60

step "devicemodel controllers of every version and model; the guest's drivers see each"
n=1
for spec in "version=1" "model=piix4-uhci" "version=3" "model=qemu-xhci ports=4"; do
  tag=$(echo "$spec" | tr ' =' '--')
  before=$(roothubs h1)
  mark_guest h1
  if run 90 $VUSB usbctrl-attach h1 type=devicemodel $spec; then pass "ctrl-$tag-attach"; else fail "ctrl-$tag-attach" "usbctrl-attach $spec"; fi
  check "ctrl-$tag-listed" eval "\$VUSB usb-list h1 | grep -Eq '^$n +devicemodel '"
  check "ctrl-$tag-guest-sees" wait_for $W eval '[ $(roothubs h1) -gt '"$before"' ]'
  n=$((n + 1))
done
xl usb-list h1 > /tmp/xl.list; $VUSB usb-list h1 > /tmp/vusb.list; cat /tmp/vusb.list
if cmp -s /tmp/xl.list /tmp/vusb.list; then pass usb-list-identical-5-controllers; else fail usb-list-identical-5-controllers "$(diff /tmp/xl.list /tmp/vusb.list | tr '\n' '|')"; fi

step "host devices by every selector on the xHCI controllers"
b1=$(busid_of $S1)
stick_cycle xhci-busid h1 $S1 $M1 $VUSB usbdev-attach h1 busid=$b1 controller=3
b1=$(busid_of $S1)
stick_cycle qemuxhci-hostbus h1 $S1 $M1 $VUSB usbdev-attach h1 hostbus=$(busnum_of $b1) hostaddr=$(devnum_of $b1) controller=4
stick_cycle ehci-serial h1 $S1 $M1 $VUSB usbdev-attach h1 vendor=46f4 product=0001 serial=$S1 controller=0
b1=$(busid_of $S1)
stick_cycle ehci-portpath h1 $S1 $M1 $VUSB usbdev-attach h1 hostbus=$(busnum_of $b1) portpath=${b1#*-} controller=0

step "emulated tablet, mouse, keyboard"
mark_guest h1
check tablet-attach run 90 $VUSB usbdev-attach h1 type=tablet controller=1
check mouse-attach run 90 $VUSB usbdev-attach h1 type=mouse controller=2
check keyboard-attach run 90 $VUSB usbdev-attach h1 type=keyboard controller=3
check tablet-guest-sees wait_guest h1 'products=\[.*QEMU USB Tablet' $W
check mouse-guest-sees wait_guest h1 'products=\[.*QEMU USB Mouse' $W
check keyboard-guest-sees wait_guest h1 'products=\[.*QEMU USB Keyboard' $W
$VUSB usb-list h1
for t in tablet mouse keyboard; do
  cp=$(emulated_port h1 $t)
  if [ -n "$cp" ] && run 90 $VUSB usbdev-detach h1 $cp; then pass "$t-detach"; else fail "$t-detach" "no port or detach failed ($cp)"; fi
done
mark_guest h1
check emulated-guest-lost wait_for $W eval 'guest_state h1 | grep -q STATE && ! guest_state h1 | grep -Eq "QEMU USB (Tablet|Mouse|Keyboard)"'

step "usbctrl-detach of every controller; the guest loses them"
for c in 4 3 2 1 0; do
  check "ctrl-$c-detach" run 120 $VUSB usbctrl-detach h1 $c
done
# usb-list must succeed and be empty (a vanished guest makes it fail with
# no output, which must not count).
check ctrl-all-gone eval 'l=$($VUSB usb-list h1) && [ -z "$l" ]'
check ctrl-guest-lost-all wait_for $W eval '[ $(roothubs h1) -eq 0 ]'
check final-host-back wait_host_disk $S1 60
# The same domain all along (hvm_guest destroys a guest that reboots, e.g.
# after a triple fault, instead of restarting it without its devices).
check h1-same-domain eval '[ "$(domid_of h1)" = "$h1_domid" ]'
note_guest_faults
