# Helpers for scenarios run inside the bed's dom0 (sourced at the top of
# /xenbed/run.sh by the test harness, crates/testsupport/src/xenbed.rs).
#
# Results: `pass NAME`, `fail NAME DETAIL`, `check NAME CMD...` append
# "RESULT ok NAME" / "RESULT FAIL NAME: DETAIL" to /xenbed/results (the
# harness asserts them); `metric NAME VALUE` appends "METRIC NAME VALUE".
# `step TEXT` marks progress (/xenbed/progress): the harness fails a run
# whose progress stalls. Guests print "DOMU STATE usb=[..] products=[..]
# disk=[..]" every second (domu-init); `wait_guest` polls for it.
export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The bed directory is a 9p mount without caching: run vusb from dom0's
# own memory (tmpfs), or every start pages the binary in over 9p.
VUSB=/tmp/vusb
[ -x $VUSB ] || cp /xenbed/vusb $VUSB
KV=$(cat /xenimg/kernel-version)
BED=/xenbed
: > $BED/results

now_ms() { date +%s%3N; }
step() { echo "STEP $(date +%H:%M:%S) $*" | tee -a $BED/progress; }
pass() { echo "RESULT ok $1" | tee -a $BED/results; }
fail() { local n=$1; shift; echo "RESULT FAIL $n: $*" | tee -a $BED/results; }
note() { echo "NOTE $*" | tee -a $BED/results; }
metric() { echo "METRIC $1 $2" | tee -a $BED/results; }
check() { # NAME CMD...: pass when CMD succeeds
  local n=$1; shift
  if "$@"; then pass "$n"; else fail "$n" "failed: $*"; fi
}
# Run a command with a bound, printing it, its output and status.
run() { # TIMEOUT CMD...
  local t=$1; shift
  echo "+ $*"; timeout -k 2 "$t" "$@"; local rc=$?
  [ $rc -eq 0 ] || echo "  -> exit $rc"
  return $rc
}
# Poll CMD every POLL s (default 0.1) until it succeeds or TIMEOUT s pass.
wait_for() { # TIMEOUT CMD...
  local t=$1; shift
  local end=$(( $(date +%s%3N) + t * 1000 ))
  while ! "$@" 2>/dev/null; do
    [ "$(date +%s%3N)" -lt "$end" ] || return 1
    sleep ${POLL:-0.1}
  done
}

# --- guests ---------------------------------------------------------------
# A PV guest NAME booting the domu initramfs; extra config lines as args.
pv_guest() { # NAME [CONFIG LINES...]
  local n=$1; shift
  { echo "name = \"$n\""; echo 'type = "pv"'
    echo "kernel = \"/xenimg/vmlinuz-$KV\""; echo 'ramdisk = "/xenimg/domu-initrd.gz"'
    echo 'extra = "console=hvc0"'; echo 'memory = 160'
    local l; for l in "$@"; do echo "$l"; done; } > /tmp/$n.cfg
  run 300 xl create /tmp/$n.cfg
}
# An HVM guest NAME (device model QEMU; console on its serial, a file in BED).
# Every character on that emulated serial port is a trip through Xen to QEMU
# in dom0 (slow under nested TCG), so the guest prints an unchanged state
# only every 10 s. It has a VGA card (`stdvga`, no display): with `vga =
# "none"` (no VGA BIOS) three guests in a row on 2026-12-06/07 never got
# past their firmware's "Booting from c000:003c" (their CPU sampled in
# real mode at the BIOS's default interrupt handler half the time), while
# with stdvga the first guest booted in 3 minutes. The kernel boots
# `quiet` (domu-init raises the console log level once it runs, so the
# kernel's USB lines are still there): without it, on a machine loaded by
# one more busy process, the guest's kernel had not finished booting
# after 10 minutes, most of it spent printing its boot messages.
# A guest that reboots is destroyed, not restarted: a restarted guest would
# truncate its serial log and come back without the devices of the
# scenario (Xen's console names the cause, e.g. "Triple fault").
hvm_guest() { # NAME [CONFIG LINES...]
  local n=$1; shift
  { echo "name = \"$n\""; echo 'type = "hvm"'
    echo "kernel = \"/xenimg/vmlinuz-$KV\""; echo 'ramdisk = "/xenimg/domu-initrd.gz"'
    echo 'extra = "console=ttyS0 quiet nokaslr domu_hb=10"'; echo 'memory = 256'
    echo 'on_reboot = "destroy"'
    echo "serial = \"file:$BED/$n-serial.log\""; echo 'vga = "stdvga"'; echo 'vnc = 0'
    local l; for l in "$@"; do echo "$l"; done; } > /tmp/$n.cfg
  run 600 xl create /tmp/$n.cfg
}
# Guest CPU faults Xen reported ("Triple fault", with its register dump):
# one NOTE each, the RIP named after dom0's own kernel symbols (guests run
# the same kernel; HVM guests boot with nokaslr, so a guest kernel address
# minus 0xffffffff81000000 is an offset from dom0's _text).
note_guest_faults() {
  xl dmesg 2>/dev/null | grep -A4 'Triple fault' | python3 -c '
import re, sys
text = sys.stdin.read()
syms = []
for l in open("/proc/kallsyms"):
    a, t, n = l.split()[:3]
    if t in "tTwW": syms.append((int(a, 16), n))
syms.sort()
base = dict((n, a) for a, n in syms).get("_text", 0)
for m in re.finditer(r"(d[0-9]+v[0-9]+) Triple fault.*?RIP:\s+([0-9a-f]+):\[<([0-9a-f]+)>\]", text, re.S):
    rip = int(m.group(3), 16)
    name = "?"
    if m.group(2) == "0010" and base:
        want = base + rip - 0xffffffff81000000
        best = max((s for s in syms if s[0] <= want), default=None)
        if best: name = "%s+0x%x" % (best[1], want - best[0])
    print("NOTE %s triple fault at %s:%x (%s)" % (m.group(1), m.group(2), rip, name))
' | while read -r l; do echo "$l"; echo "$l" >> $BED/results; done
}
guest_log() { # NAME
  if [ -f "$BED/$1-serial.log" ]; then echo "$BED/$1-serial.log"; else echo "/var/log/xen/console/guest-$1.log"; fi
}
domid_of() { xl domid "$1"; }
# Mark the guest's log: later waits look only at what comes after.
mark_guest() { eval "MARK_$1=$(stat -c %s "$(guest_log "$1")" 2>/dev/null || echo 0)"; }
since_mark() { local v="MARK_$1"; tail -c +$(( ${!v:-0} + 1 )) "$(guest_log "$1")" 2>/dev/null | tr -d '\r'; }
# The guest's latest state line after the mark.
guest_state() { since_mark "$1" | grep -a "DOMU STATE" | tail -1; }
# Wait until the guest's latest state (after the mark) matches the ERE.
wait_guest() { # NAME ERE TIMEOUT
  local _g=$1 _re=$2
  wait_for "$3" eval 'guest_state "$_g" | grep -aEq "$_re"'
}
# Wait until the guest's kernel log (after the mark) has a line matching ERE.
wait_guest_line() { # NAME ERE TIMEOUT
  local _g=$1 _re=$2
  wait_for "$3" eval 'since_mark "$_g" | grep -aEq "$_re"'
}

# "C P" of the controller port holding BUSID in DOMAIN: the backend's port
# table for pv/qusb, libxl's own for devicemodel (as libxl keeps them).
ctrlport_of() { # DOMAIN BUSID
  local d c p be; d=$(domid_of "$1") || return 1
  for c in $(xenstore-list "/libxl/$d/device/vusb" 2>/dev/null); do
    be=$(xenstore-read "/libxl/$d/device/vusb/$c/backend" 2>/dev/null) || be="/libxl/$d/device/vusb/$c"
    for p in $(xenstore-list "$be/port" 2>/dev/null); do
      [ "$(xenstore-read "$be/port/$p")" = "$2" ] && { echo "$c $p"; return 0; }
    done
  done
  return 1
}

# --- dom0's USB devices ---------------------------------------------------
# busid of the device with this serial (or vendor:product).
busid_of() { # SERIAL | VID:PID
  local d
  for d in /sys/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] || continue
    case "$1" in
      *:*) [ "$(cat $d/idVendor):$(cat $d/idProduct)" = "$1" ] && { basename "$d"; return 0; } ;;
      *) [ "$(cat $d/serial 2>/dev/null)" = "$1" ] && { basename "$d"; return 0; } ;;
    esac
  done
  return 1
}
busnum_of() { cat /sys/bus/usb/devices/$1/busnum; }
devnum_of() { cat /sys/bus/usb/devices/$1/devnum; }
# The driver bound to interface 0 of BUSID, or "none".
host_driver() { # BUSID
  local l=/sys/bus/usb/devices/$1:1.0/driver
  if [ -e "$l" ]; then basename "$(readlink "$l")"; else echo none; fi
}
driver_is() { [ "$(host_driver "$1")" = "$2" ]; }
# The block device (/dev/sdX) of a usb-storage BUSID.
block_of() { # BUSID
  local b; for b in /sys/bus/usb/devices/$1:1.0/host*/target*/*/block/*; do
    [ -e "$b" ] && { echo "/dev/$(basename "$b")"; return 0; }; done; return 1
}
# Wait until the stick with SERIAL is dom0's again: usb-storage and a disk.
wait_host_disk() { # SERIAL TIMEOUT
  local _s=$1 _b
  wait_for "$2" eval '_b=$(busid_of "$_s") && driver_is "$_b" usb-storage && block_of "$_b" >/dev/null'
}
# The 64 bytes at offset 512 of the stick (what the guest wrote), read
# past dom0's page cache.
disk_note() { # BUSID
  local dev; dev=$(block_of "$1") || return 1
  dd if="$dev" bs=512 skip=1 count=1 iflag=direct 2>/dev/null | head -c 64 | tr -d '\000'
}
clear_note() { # BUSID
  local dev; dev=$(block_of "$1") || return 1
  dd if=/dev/zero of="$dev" bs=512 seek=1 count=1 oflag=direct 2>/dev/null
}

# --- the outer QEMU (the "hardware"), through the harness -----------------
# Send one QMP command to the outer QEMU; prints the reply line.
host_qmp() { # JSON
  local n=$(( ${QMP_SEQ:-0} + 1 )); QMP_SEQ=$n
  mkdir -p $BED/qmp
  echo "$1" > $BED/qmp/$n.tmp && mv $BED/qmp/$n.tmp $BED/qmp/$n.req
  wait_for 30 test -f $BED/qmp/$n.rep || { echo "host_qmp: no reply to $1"; return 1; }
  cat $BED/qmp/$n.rep
  ! grep -q '"error"' $BED/qmp/$n.rep
}
unplug() { host_qmp "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"$1\"}}"; }
