# Physical ports on the real bed (run in dom0 after the harness's lib.sh):
# one outer xHCI connector seen through its USB2 half (a high-speed device)
# and its USB3 half (a SuperSpeed one) gives one physical_port, and so does
# the same connector after its buses are renumbered by re-probing the
# controllers in the other order. Facts from dom0's own kernel sysfs.
#
# Outer QEMU (see xenbed_physport.rs): the harness's qemu-xhci `xhci` (the
# controller under test), a second qemu-xhci `xhci2` probed after it, a
# usb-tablet (high speed, 0627:0001) on port 1 of `xhci`, and block node
# `stick1` for the usb-storage (SuperSpeed on QEMU 7.2's xHCI) plugged later.

# physical_port / busid fields of usb-assignable-list --json for BUSID.
listing() { $VUSB usb-assignable-list --all --json 2>/dev/null; }
field_of() { # BUSID KEY (from $BED/list.json)
  python3 -c 'import json,sys
for e in json.load(open(sys.argv[1])):
    if e["busid"] == sys.argv[2]: print(e[sys.argv[3]])' "$BED/list.json" "$1" "$2"
}
snap_links() { # NAME: the kernel's port/peer links, for the record
  local d; for d in /sys/bus/usb/devices/*; do
    case ${d##*/} in *:*) continue;; esac
    echo "${d##*/} speed=$(cat $d/speed) bus=$(cat $d/busnum) dev=$(readlink -f $d) port=$(readlink $d/port) peer=$(readlink $d/port/peer 2>/dev/null)"
  done > "$BED/links-$1.txt"
}

step "high-speed half"
check tablet-present wait_for 120 busid_of 0627:0001
b1=$(busid_of 0627:0001)
snap_links hs
listing > $BED/list.json
p1=$(field_of "$b1" physical_port)
note "usb-tablet: busid $b1 speed $(cat /sys/bus/usb/devices/$b1/speed) physical_port $p1"
check hs-speed test "$(cat /sys/bus/usb/devices/$b1/speed)" = 480
check hs-has-peer test -L /sys/bus/usb/devices/$b1/port/peer
check hs-physport-anchored eval '[[ "$p1" == 0000:*/1 ]]'

step "superspeed half"
check tablet-unplugged unplug first
wait_for 30 eval '! busid_of 0627:0001 >/dev/null'
check stick-plugged host_qmp '{"execute":"device_add","arguments":{"driver":"usb-storage","bus":"xhci.0","port":"1","drive":"stick1","id":"stick1","serial":"PHYS0001"}}'
check stick-present wait_for 120 busid_of PHYS0001
b2=$(busid_of PHYS0001)
snap_links ss
listing > $BED/list.json
p2=$(field_of "$b2" physical_port)
note "usb-storage: busid $b2 speed $(cat /sys/bus/usb/devices/$b2/speed) physical_port $p2"
check ss-speed test "$(cat /sys/bus/usb/devices/$b2/speed)" = 5000
check halves-differ-by-busid test "$b1" != "$b2"
check halves-one-physport test -n "$p1" -a "$p1" = "$p2"
check text-shows-physport eval "$VUSB usb-assignable-list | grep -q \"^$b2 .* $p2 \""

step "renumbered buses"
ctrl=${p2%%/*}
other=$(for d in /sys/bus/pci/drivers/xhci_hcd/0000:*; do n=${d##*/}; [ "$n" != "$ctrl" ] && echo $n; done | head -1)
note "controller under test $ctrl, other xHCI $other"
check two-controllers test -n "$other"
echo -n "$ctrl" > /sys/bus/pci/drivers/xhci_hcd/unbind
echo -n "$other" > /sys/bus/pci/drivers/xhci_hcd/unbind
echo -n "$other" > /sys/bus/pci/drivers/xhci_hcd/bind
wait_for 30 test -e /sys/bus/pci/drivers/xhci_hcd/$other
echo -n "$ctrl" > /sys/bus/pci/drivers/xhci_hcd/bind
check stick-back wait_for 120 busid_of PHYS0001
b3=$(busid_of PHYS0001)
snap_links renumbered
listing > $BED/list.json
p3=$(field_of "$b3" physical_port)
note "after re-probe: busid $b3 physical_port $p3"
check renumbered-busid-differs test "${b3%%-*}" != "${b2%%-*}"
check renumbered-same-physport test "$p3" = "$p2"

step "SuperSpeed-only port"
# xhci2 (p2=4, p3=8): its USB3 port 5 has no USB2 half.
check ss-only-present wait_for 60 busid_of SSONLY01
b4=$(busid_of SSONLY01)
listing > $BED/list.json
p4=$(field_of "$b4" physical_port)
note "stick on a SuperSpeed-only port: busid $b4 port $(readlink /sys/bus/usb/devices/$b4/port) physical_port $p4"
check ss-only-has-no-peer test ! -e /sys/bus/usb/devices/$b4/port/peer
check ss-only-marked eval '[[ "$p4" == 0000:*/s5 ]]'
