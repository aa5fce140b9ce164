#!/usr/bin/env python3
"""Assemble the umockdev recordings in this directory.

There is no USB hardware on the build machine, so these trees are written
in `umockdev-record` output format from the attributes of real devices
(ids, strings, classes, speeds, drivers as Linux 6.1 shows them). Run
`python3 assemble.py` to regenerate; the .umockdev files are committed.

Format (umockdev-record): one block per device, `P:` its path below /sys,
`N:` device node, `E:` udev properties, `A:` attributes (`\\n` escapes the
newline; none when the value has none), `L:` links. Subdirectories that are
not devices (a hub's `usbN-portK/`) are attributes with a slash in the name.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def esc(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n")


class Rec:
    def __init__(self, controller, pci_id="8086:a36d", hcd="xhci_hcd"):
        self.ctrl = controller
        self.pci_id = pci_id
        self.hcd = hcd
        self.blocks = []  # (path, lines)
        self.buses = {}

    def base(self, bus):
        return "/devices/pci0000:00/%s/usb%d" % (self.ctrl, bus)

    def path_of(self, busid):
        if busid.startswith("usb"):
            return self.base(int(busid[3:]))
        bus, ports = busid.split("-")
        parts = ports.split(".")
        p = self.base(int(bus))
        for i in range(len(parts)):
            p += "/%s-%s" % (bus, ".".join(parts[: i + 1]))
        return p

    @staticmethod
    def up(path):
        # from a directory /x/y/z (below /sys) back to /sys
        return "../" * (len(path.strip("/").split("/")))

    def add(self, path, lines):
        self.blocks.append((path, lines))

    def device(self, busid, devnum, vid, pid, cls="00", sub="00", proto="00", manufacturer=None,
               product=None, serial=None, speed="480", version="2.00", interfaces=(), nl=True,
               busnum=None, drop=(), maxchild=0, bcd="0100", extra=()):
        n = "\\n" if nl else ""
        path = self.path_of(busid)
        bus = int(busid[3:]) if busid.startswith("usb") else int(busid.split("-")[0])
        dp = busid.split("-")[1] if "-" in busid else "0"
        lines = [
            "N: bus/usb/%03d/%03d" % (bus, devnum),
            "E: BUSNUM=%03d" % bus,
            "E: DEVNAME=/dev/bus/usb/%03d/%03d" % (bus, devnum),
            "E: DEVNUM=%03d" % devnum,
            "E: DEVTYPE=usb_device",
            "E: DRIVER=usb",
            "E: MAJOR=189",
            "E: MINOR=%d" % ((bus - 1) * 128 + devnum - 1),
            "E: PRODUCT=%x/%x/%s" % (int(vid, 16), int(pid, 16), bcd.lstrip("0") or "0"),
            "E: SUBSYSTEM=usb",
            "E: TYPE=%d/%d/%d" % (int(cls, 16), int(sub, 16), int(proto, 16)),
        ]
        attrs = {
            "authorized": "1",
            "avoid_reset_quirk": "0",
            "bConfigurationValue": "1",
            "bDeviceClass": cls,
            "bDeviceProtocol": proto,
            "bDeviceSubClass": sub,
            "bMaxPacketSize0": "64",
            "bMaxPower": "100mA",
            "bNumConfigurations": "1",
            "bNumInterfaces": "%2d" % len(interfaces),
            "bcdDevice": bcd,
            "bmAttributes": "a0",
            "busnum": str(busnum if busnum is not None else bus),
            "configuration": "",
            "dev": "189:%d" % ((bus - 1) * 128 + devnum - 1),
            "devnum": str(devnum),
            "devpath": dp,
            "idProduct": pid,
            "idVendor": vid,
            "ltm_capable": "no",
            "maxchild": str(maxchild),
            "power/control": "on",
            "quirks": "0x0",
            "removable": "removable" if not busid.startswith("usb") else "unknown",
            "rx_lanes": "1",
            "speed": speed,
            "tx_lanes": "1",
            "urbnum": "42",
            "version": " " + version,
        }
        if manufacturer is not None:
            attrs["manufacturer"] = manufacturer
        if product is not None:
            attrs["product"] = product
        if serial is not None:
            attrs["serial"] = serial
        for d in drop:
            attrs.pop(d, None)
        for k in sorted(attrs):
            v = attrs[k]
            lines.append("A: %s=%s%s" % (k, esc(v), n if v != "" else ""))
        lines += list(extra)
        lines.append("L: driver=%sbus/usb/drivers/usb" % self.up(path))
        if not busid.startswith("usb"):
            parent = busid.rsplit(".", 1)[0] if "." in busid else "usb%d" % bus
            pintf = "%d-0:1.0" % bus if parent.startswith("usb") else parent + ":1.0"
            port = busid.split("-")[1].split(".")[-1]
            lines.append("L: port=../%s/%s-port%s" % (pintf, parent, port))
        self.add(path, lines)
        iname_base = "%d-0" % bus if busid.startswith("usb") else busid
        for i, itf in enumerate(interfaces):
            icls, isub, iproto, drv = itf[:4]
            extra = itf[4] if len(itf) > 4 else {}
            ipath = "%s/%s:1.%d" % (path, iname_base, i)
            il = ["E: DEVTYPE=usb_interface"]
            if drv:
                il.append("E: DRIVER=%s" % drv)
            il += [
                "E: INTERFACE=%d/%d/%d" % (int(icls, 16), int(isub, 16), int(iproto, 16)),
                "E: PRODUCT=%x/%x/%s" % (int(vid, 16), int(pid, 16), bcd.lstrip("0") or "0"),
                "E: SUBSYSTEM=usb",
                "A: authorized=1\\n",
                "A: bAlternateSetting= 0\\n",
                "A: bInterfaceClass=%s%s" % (icls, n),
                "A: bInterfaceNumber=%02x%s" % (i, n),
                "A: bInterfaceProtocol=%s%s" % (iproto, n),
                "A: bInterfaceSubClass=%s%s" % (isub, n),
                "A: bNumEndpoints=%02d\\n" % (1 if icls != "09" else 1),
                "A: supports_autosuspend=1\\n",
            ]
            for k in sorted(extra):
                il.append(extra[k])
            if drv:
                il.append("L: driver=%sbus/usb/drivers/%s" % (self.up(ipath), drv))
            self.add(ipath, il)
        return path

    def hub_ports(self, busid, nports, peers=None):
        """Port directories of a hub as attributes of its interface 1.0;
        peers: {port: peer port dir relative to the sysfs root}."""
        path = self.path_of(busid)
        bus = int(busid[3:]) if busid.startswith("usb") else int(busid.split("-")[0])
        iname = "%d-0:1.0" % bus if busid.startswith("usb") else busid + ":1.0"
        ipath = "%s/%s" % (path, iname)
        for blk in self.blocks:
            if blk[0] == ipath:
                lines = blk[1]
                break
        else:
            raise SystemExit("no hub interface " + ipath)
        for p in range(1, nports + 1):
            pname = "%s-port%d" % (busid, p)
            lines.append("A: %s/connect_type=hotplug\\n" % pname)
            lines.append("A: %s/quirks=00000000\\n" % pname)
            if peers and p in peers:
                lines.append("L: %s/peer=%s%s" % (pname, self.up(ipath + "/" + pname), peers[p].lstrip("/")))

    def port_dir(self, busid, port):
        path = self.path_of(busid)
        bus = int(busid[3:]) if busid.startswith("usb") else int(busid.split("-")[0])
        iname = "%d-0:1.0" % bus if busid.startswith("usb") else busid + ":1.0"
        return "%s/%s/%s-port%d" % (path, iname, busid, port)

    def root_hub(self, bus, version, nports, product):
        ss = version.startswith("3")
        self.device("usb%d" % bus, 1, "1d6b", "0003" if ss else "0002", cls="09", proto="03" if ss else "01",
                    manufacturer="Linux 6.1.0-18-amd64 %s" % self.hcd, product=product, serial=self.ctrl,
                    speed="5000" if ss else "480", version=version, maxchild=nports, bcd="0601",
                    interfaces=[("09", "00", "00", "hub")])

    def peer_root(self, hs, ss, nports):
        self.hub_ports("usb%d" % hs, nports, {p: self.port_dir("usb%d" % ss, p) for p in range(1, nports + 1)})
        self.hub_ports("usb%d" % ss, nports, {p: self.port_dir("usb%d" % hs, p) for p in range(1, nports + 1)})

    def scsi_disk(self, intf_busid, host, disk, major_minor, parts=(), holders=None):
        ipath = self.path_of(intf_busid.split(":")[0]) + "/" + intf_busid
        dpath = "%s/host%d/target%d:0:0/%d:0:0:0/block/%s" % (ipath, host, host, host, disk)
        maj, mnr = major_minor
        for i, pname in enumerate(parts, start=1):
            pl = ["N: %s" % pname, "E: DEVNAME=/dev/%s" % pname, "E: DEVTYPE=partition",
                  "E: MAJOR=%d" % maj, "E: MINOR=%d" % (mnr + i), "E: PARTN=%d" % i, "E: SUBSYSTEM=block",
                  "A: dev=%d:%d\\n" % (maj, mnr + i), "A: partition=%d\\n" % i, "A: ro=0\\n",
                  "A: size=30529536\\n", "A: start=2048\\n"]
            for h in (holders or {}).get(pname, []):
                pl.append("L: holders/%s=%sdevices/virtual/block/%s" % (h, self.up(dpath + "/" + pname + "/holders"), h))
            self.add(dpath + "/" + pname, pl)
        dl = ["N: %s" % disk, "E: DEVNAME=/dev/%s" % disk, "E: DEVTYPE=disk", "E: MAJOR=%d" % maj,
              "E: MINOR=%d" % mnr, "E: SUBSYSTEM=block", "A: dev=%d:%d\\n" % (maj, mnr), "A: removable=1\\n",
              "A: ro=0\\n", "A: size=30535680\\n"]
        self.add(dpath, dl)

    def write(self, name, comment):
        blocks = sorted(self.blocks, key=lambda b: -b[0].count("/"))
        out = []
        for path, lines in blocks:
            out.append("P: " + path)
            out += lines
            out.append("")
        out += ["P: /devices/pci0000:00/" + self.ctrl, "E: DRIVER=" + self.hcd,
                "E: PCI_CLASS=C0330" if self.hcd == "xhci_hcd" else "E: PCI_CLASS=C0320",
                "E: PCI_ID=" + self.pci_id.upper(), "E: SUBSYSTEM=pci",
                "A: class=0x0c0330\\n", "A: vendor=0x%s\\n" % self.pci_id.split(":")[0],
                "A: device=0x%s\\n" % self.pci_id.split(":")[1], ""]
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write("\n".join(out))
        print("wrote", name, "(%s)" % comment)


def nested_hubs():
    r = Rec("0000:00:1d.0", "8086:1c26", "ehci-pci")
    r.root_hub(2, "2.00", 2, "EHCI Host Controller")
    r.hub_ports("usb2", 2)
    r.device("2-1", 2, "8087", "0024", cls="09", proto="01", speed="480", maxchild=8,
             interfaces=[("09", "00", "00", "hub")])
    r.hub_ports("2-1", 8)
    r.device("2-1.1", 3, "05e3", "0608", cls="09", proto="01", product="USB2.0 Hub", maxchild=4,
             bcd="6060", interfaces=[("09", "00", "00", "hub")])
    r.hub_ports("2-1.1", 4)
    r.device("2-1.1.4", 4, "1a40", "0101", cls="09", proto="02", product="USB 2.0 Hub [MTT]", maxchild=4,
             interfaces=[("09", "00", "01", "hub")])
    r.hub_ports("2-1.1.4", 4)
    r.device("2-1.1.4.2", 5, "046d", "c077", manufacturer="Logitech", product="USB Optical Mouse",
             speed="1.5", version="2.00", bcd="7200", interfaces=[("03", "01", "02", "usbhid")])
    r.device("2-1.8", 6, "147e", "2016", manufacturer="UPEK", product="Biometric Coprocessor",
             speed="12", version="1.10", interfaces=[("ff", "00", "00", None)])
    r.write("nested-hubs.umockdev", "EHCI with Intel rate-matching hub, hubs nested 3 deep")


def composite_hid():
    r = Rec("0000:00:14.0", "8086:a36d")
    r.root_hub(1, "2.00", 8, "xHCI Host Controller")
    r.root_hub(2, "3.10", 6, "xHCI Host Controller")
    r.peer_root(1, 2, 6)
    r.device("1-3", 2, "046d", "c52b", manufacturer="Logitech", product="USB Receiver", speed="12",
             bcd="1211", interfaces=[("03", "01", "01", "usbhid"), ("03", "01", "02", "usbhid"),
                                     ("03", "00", "00", "usbhid")])
    r.device("1-4", 3, "0b0e", "0300", manufacturer="GN Netcom A/S", product="Jabra EVOLVE 20 MS",
             serial="A0F6B9F2E1C2", speed="12", interfaces=[("01", "01", "00", "snd-usb-audio"),
                                                            ("01", "02", "00", "snd-usb-audio"),
                                                            ("01", "02", "00", "snd-usb-audio"),
                                                            ("03", "00", "00", "usbhid")])
    r.device("1-5", 4, "1050", "0407", manufacturer="Yubico", product="YubiKey OTP+FIDO+CCID", speed="12",
             interfaces=[("03", "01", "01", "usbhid"), ("03", "00", "00", "usbhid"), ("0b", "00", "00", None)])
    r.device("1-7", 5, "8087", "0a2b", cls="e0", sub="01", proto="01", speed="12",
             interfaces=[("e0", "01", "01", "btusb"), ("e0", "01", "01", "btusb")])
    r.write("composite-hid.umockdev", "Unifying receiver, headset audio+HID, YubiKey, Bluetooth")


def keyboard_with_hub():
    r = Rec("0000:00:10.0", "1022:7814")
    r.root_hub(3, "2.00", 4, "xHCI Host Controller")
    r.hub_ports("usb3", 4)
    r.device("3-2", 2, "05ac", "1006", cls="09", proto="01", manufacturer="Apple, Inc.", product="Keyboard Hub",
             serial="000000000000", maxchild=3, bcd="9415", interfaces=[("09", "00", "00", "hub")])
    r.hub_ports("3-2", 3)
    r.device("3-2.2", 3, "05ac", "0221", manufacturer="Apple, Inc", product="Apple Keyboard", speed="1.5",
             version="1.10", bcd="0069", interfaces=[("03", "01", "01", "usbhid"), ("03", "00", "00", "usbhid")])
    r.device("3-2.3", 4, "1532", "0084", manufacturer="Razer", product="Razer DeathAdder V2", speed="12",
             interfaces=[("03", "01", "02", "usbhid"), ("03", "00", "01", "usbhid"), ("03", "00", "02", "usbhid")])
    # A keyboard whose built-in hub shows only as an interface (device class 00).
    r.device("3-3", 5, "04d9", "0022", manufacturer="Holtek", product="USB Keyboard w/ Hub", speed="12",
             interfaces=[("09", "00", "00", "hub"), ("03", "01", "01", "usbhid")])
    # Non-ASCII strings, as the device sends them (UTF-8 in sysfs).
    r.device("3-4", 6, "0483", "5740", manufacturer="Société Générale d'Électronique",
             product="Clé de sécurité ✓ 安全", serial="ÄÖÜ-0042", speed="12",
             interfaces=[("02", "02", "01", "cdc_acm"), ("0a", "00", "00", "cdc_acm")])
    r.write("keyboard-with-hub.umockdev", "Apple keyboard hub, hub-by-interface keyboard, non-ASCII strings")


def mass_storage():
    r = Rec("0000:00:14.0", "8086:a36d")
    r.root_hub(1, "2.00", 4, "xHCI Host Controller")
    r.root_hub(2, "3.10", 4, "xHCI Host Controller")
    r.peer_root(1, 2, 4)
    r.device("1-1", 2, "05e3", "0610", cls="09", proto="02", manufacturer="GenesysLogic", product="USB2.1 Hub",
             maxchild=4, interfaces=[("09", "00", "02", "hub")])
    r.hub_ports("1-1", 4)
    r.device("1-1.2", 3, "0781", "5567", manufacturer="SanDisk", product="Cruzer Blade",
             serial="4C530001230419117062", interfaces=[("08", "06", "50", "usb-storage")])
    r.scsi_disk("1-1.2:1.0", 6, "sdb", (8, 16), parts=["sdb1"])
    r.device("1-1.3", 4, "05e3", "0749", manufacturer="Generic", product="USB3.0 Card Reader",
             serial="000000001536", interfaces=[("08", "06", "50", "usb-storage")])
    r.scsi_disk("1-1.3:1.0", 7, "sde", (8, 64))
    r.device("1-4", 5, "0951", "1666", manufacturer="Kingston", product="DataTraveler 3.0",
             serial="E0D55EA573DCF450E97B0D3A", interfaces=[("08", "06", "50", "usb-storage")])
    r.scsi_disk("1-4:1.0", 8, "sdd", (8, 48), parts=["sdd1"], holders={"sdd1": ["dm-0"]})
    r.device("2-3", 2, "04e8", "4001", manufacturer="Samsung", product="PSSD T7", serial="S5SXNS0R123456A",
             speed="10000", version="3.20", interfaces=[("08", "06", "62", "uas")])
    r.scsi_disk("2-3:1.0", 9, "sdc", (8, 32), parts=["sdc1", "sdc2"])
    r.write("mass-storage-mounted.umockdev", "flash drive behind a hub, card reader, LUKS stick, USB 3.2 SSD")


def usb3_companions():
    r = Rec("0000:00:14.0", "8086:9a13")
    r.root_hub(3, "2.00", 4, "xHCI Host Controller")
    r.root_hub(4, "3.10", 4, "xHCI Host Controller")
    r.peer_root(3, 4, 4)
    r.device("3-1", 2, "2109", "2817", cls="09", proto="02", manufacturer="VIA Labs, Inc.", product="USB2.0 Hub",
             maxchild=4, bcd="0473", interfaces=[("09", "00", "02", "hub")])
    r.device("4-1", 2, "2109", "0817", cls="09", proto="03", manufacturer="VIA Labs, Inc.", product="USB3.0 Hub",
             speed="5000", version="3.10", maxchild=4, bcd="0473", interfaces=[("09", "00", "00", "hub")])
    r.hub_ports("3-1", 4, {p: r.port_dir("4-1", p) for p in range(1, 5)})
    r.hub_ports("4-1", 4, {p: r.port_dir("3-1", p) for p in range(1, 5)})
    r.device("4-1.2", 3, "174c", "55aa", manufacturer="ASMedia", product="ASM1153E", serial="123456789012",
             speed="5000", version="3.00", interfaces=[("08", "06", "62", "uas")])
    r.device("3-1.3", 3, "046d", "085c", product="C922 Pro Stream Webcam", serial="A1B2C3D4",
             interfaces=[("0e", "01", "00", "uvcvideo"), ("0e", "02", "00", "uvcvideo"),
                         ("01", "01", "00", "snd-usb-audio"), ("01", "02", "00", "snd-usb-audio")])
    r.device("4-2", 4, "04e8", "4001", manufacturer="Samsung", product="PSSD T7", serial="S5SXNS0R654321B",
             speed="10000", version="3.20", interfaces=[("08", "06", "62", "uas")])
    r.device("3-4", 5, "413c", "2113", manufacturer="Dell", product="Dell KB216 Wired Keyboard", speed="1.5",
             version="1.10", interfaces=[("03", "01", "01", "usbhid"), ("03", "00", "00", "usbhid")])
    r.write("usb3-companions.umockdev", "USB3 hub on both buses, SS devices, companion peers")


def descriptors(vid, pid, interfaces):
    """`H: descriptors=` of a device: the device descriptor, then one
    configuration; interfaces = [(number, alt, class, sub, proto,
    [(ep address, bmAttributes), ...]), ...] with every alternate setting."""
    v, p = int(vid, 16), int(pid, 16)
    dev = [18, 1, 0x00, 0x02, 0, 0, 0, 64, v & 0xff, v >> 8, p & 0xff, p >> 8, 0, 1, 1, 2, 3, 1]
    body = []
    for num, alt, cls, sub, proto, eps in interfaces:
        body += [9, 4, num, alt, len(eps), cls, sub, proto, 0]
        for addr, bm in eps:
            body += [7, 5, addr, bm, 0x00, 0x04, 1]
    total = 9 + len(body)
    count = len({i[0] for i in interfaces})
    conf = [9, 2, total & 0xff, total >> 8, count, 1, 0, 0x80, 250]
    return "H: descriptors=" + "".join("%02X" % b for b in dev + conf + body)


def ep(addr, bm):
    """An endpoint directory of an interface's current alternate setting."""
    kind = ["Control", "Isoc", "Bulk", "Interrupt"][bm & 3]
    return {"ep_%02x" % addr: "\n".join([
        "A: ep_%02x/bEndpointAddress=%02x\\n" % (addr, addr),
        "A: ep_%02x/bmAttributes=%02x\\n" % (addr, bm),
        "A: ep_%02x/type=%s\\n" % (addr, kind),
    ])}


def peers_iso(hs, ss, name):
    """Intel-like xHCI: USB2 root hub (6 ports) and USB3 root hub (4), peers
    not by equal numbers (SS1-HS3, SS2-HS4, SS3-HS1; SS4 has no USB2 half);
    a USB3 hub in connector 4 (USB2 half on HS4, USB3 half on SS2, its ports
    peered by number); a webcam with isochronous endpoints in alternate
    setting 1 only; a USB audio adapter recorded without `descriptors`
    (ep_XX of its current setting only); SuperSpeed devices on SS ports.
    Written twice with different bus numbers (renumbering)."""
    r = Rec("0000:00:14.0", "8086:a36d")
    r.root_hub(hs, "2.00", 6, "xHCI Host Controller")
    r.root_hub(ss, "3.10", 4, "xHCI Host Controller")
    ss_to_hs = {1: 3, 2: 4, 3: 1}
    hs_peers = {h: r.port_dir("usb%d" % ss, s) for s, h in ss_to_hs.items()}
    ss_peers = {s: r.port_dir("usb%d" % hs, h) for s, h in ss_to_hs.items()}
    r.hub_ports("usb%d" % hs, 6, hs_peers)
    r.hub_ports("usb%d" % ss, 4, ss_peers)
    h2, h3 = "%d-4" % hs, "%d-2" % ss
    r.device(h2, 2, "2109", "2817", cls="09", proto="02", manufacturer="VIA Labs, Inc.", product="USB2.0 Hub",
             maxchild=4, bcd="0473", interfaces=[("09", "00", "02", "hub")])
    r.device(h3, 2, "2109", "0817", cls="09", proto="03", manufacturer="VIA Labs, Inc.", product="USB3.0 Hub",
             speed="5000", version="3.10", maxchild=4, bcd="0473", interfaces=[("09", "00", "00", "hub")])
    r.hub_ports(h2, 4, {p: r.port_dir(h3, p) for p in range(1, 5)})
    r.hub_ports(h3, 4, {p: r.port_dir(h2, p) for p in range(1, 5)})
    cam = descriptors("046d", "085c", [(0, 0, 0x0e, 1, 0, [(0x87, 3)]), (1, 0, 0x0e, 2, 0, []),
                                       (1, 1, 0x0e, 2, 0, [(0x81, 5)]), (2, 0, 0x01, 1, 0, []),
                                       (3, 0, 0x01, 2, 0, []), (3, 1, 0x01, 2, 0, [(0x84, 0x0d)])])
    r.device("%d-4.1" % hs, 3, "046d", "085c", product="C922 Pro Stream Webcam", serial="CAM1", extra=[cam],
             interfaces=[("0e", "01", "00", "uvcvideo", ep(0x87, 3)), ("0e", "02", "00", "uvcvideo"),
                         ("01", "01", "00", "snd-usb-audio"), ("01", "02", "00", "snd-usb-audio")])
    r.device("%d-2.3" % ss, 3, "04e8", "4001", manufacturer="Samsung", product="PSSD T7", serial="SSD1",
             speed="10000", version="3.20", interfaces=[("08", "06", "62", "uas", ep(0x81, 2))])
    r.device("%d-2" % hs, 4, "0d8c", "0014", manufacturer="C-Media", product="USB Audio Device", speed="12",
             version="1.10", interfaces=[("01", "01", "00", "snd-usb-audio"),
                                         ("01", "02", "00", "snd-usb-audio", ep(0x01, 0x09))])
    r.device("%d-1" % ss, 4, "0951", "1666", manufacturer="Kingston", product="DataTraveler 3.0", serial="STICK1",
             speed="5000", version="3.00", interfaces=[("08", "06", "50", "usb-storage")])
    r.device("%d-4" % ss, 5, "0781", "5581", manufacturer="SanDisk", product="Ultra", serial="SSONLY1",
             speed="5000", version="3.00", interfaces=[("08", "06", "50", "usb-storage")])
    r.write(name, "USB2/USB3 peers, external USB3 hub, isochronous endpoints, buses %d/%d" % (hs, ss))


def identical_serials():
    r = Rec("0000:00:14.0", "8086:a36d")
    r.root_hub(1, "2.00", 8, "xHCI Host Controller")
    r.hub_ports("usb1", 8)
    for busid, dn in (("1-1", 2), ("1-2", 3)):
        r.device(busid, dn, "0403", "6001", manufacturer="FTDI", product="FT232R USB UART", serial="A50285BI",
                 speed="12", bcd="0600", interfaces=[("ff", "ff", "ff", "ftdi_sio")])
    # Recorded without trailing newlines (older tools, hand edits).
    for busid, dn in (("1-3", 4), ("1-4", 5)):
        r.device(busid, dn, "1a86", "7523", product="USB Serial", speed="12", version="1.10", nl=False,
                 interfaces=[("ff", "01", "02", "ch341")])
    # Inconsistent: busnum says 2, the path says bus 1 (the path wins).
    r.device("1-5", 7, "10c4", "ea60", manufacturer="Silicon Labs", product="CP2102 USB to UART Bridge Controller",
             serial="0001", speed="12", busnum=2, interfaces=[("ff", "00", "00", "cp210x")])
    # Broken: no idVendor (a device caught mid-enumeration): skipped.
    r.device("1-6", 8, "067b", "2303", product="USB-Serial Controller", speed="12", drop=("idVendor",),
             interfaces=[("ff", "00", "00", "pl2303")])
    r.write("identical-serials.umockdev", "same-serial FTDI pair, serial-less CH340 pair, odd records")


if __name__ == "__main__":
    nested_hubs()
    composite_hid()
    keyboard_with_hub()
    mass_storage()
    usb3_companions()
    identical_serials()
    peers_iso(1, 2, "peers-iso.umockdev")
    peers_iso(4, 3, "peers-iso-renumbered.umockdev")
