//! `vusb-bench scale [--sizes 1,10,100,1000] [--reps 5] [--vusb PATH] [--devices K]`:
//! xenstore requests and wall time of `usbdev-attach`, `usb-list` and
//! `usbdev-detach` on hosts with N domains, the real `xl` beside vusb on
//! the same fake host in the same run.
//!
//! Each of the N PV guests has one pv controller (2 ports) with one device
//! in port 1 (with `--devices K`: only the first K - 1 guests, the others'
//! controllers are empty, so the host's device count stays K while the
//! domain count grows), laid out exactly as libxl leaves it (frontend, backend and
//! `/libxl` nodes, driver memory, interfaces bound to usbback) plus vusb's
//! assignment record; the setup is written directly, not timed. Measured,
//! alternately for xl and vusb, `reps` times: one more `usbdev-attach 1
//! hostbus=B hostaddr=A` (lands in controller 0 port 2), `usb-list 1`,
//! `usbdev-detach 1 0 2`. Requests are the `IN` lines of the command's own
//! connections in xenstored's `-T` trace; wall time is the whole process
//! (spawn to exit), median over the repetitions. The trace is deleted with
//! the host.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use vusb_core::assign::{self, Assignment};
use vusb_core::layout::UsbCtrlType;
use vusb_sim::fixture::{devices, usb_addr};
use vusb_testsupport::fakehost::{FakeHost, FakeHostConfig};
use vusb_testsupport::xlpeer::{self, Outcome};
use vusb_xenstore::{Perm, PermKind, TxId, Xenstore, XenstoreExt};

struct Options {
    sizes: Vec<u32>,
    reps: usize,
    vusb: PathBuf,
    /// Fixed number of host devices (default: one per domain, plus one).
    devices: Option<usize>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let exe = std::env::current_exe().context("locating vusb-bench")?;
    let mut o = Options {
        sizes: vec![1, 10, 100, 1000],
        reps: 5,
        vusb: exe.with_file_name("vusb"),
        devices: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sizes" => {
                o.sizes = val()?
                    .split(',')
                    .map(|s| s.trim().parse().with_context(|| format!("bad size {s:?}")))
                    .collect::<anyhow::Result<_>>()?
            }
            "--reps" => o.reps = val()?.parse().context("bad --reps")?,
            "--vusb" => o.vusb = PathBuf::from(val()?),
            "--devices" => {
                let k: usize = val()?.parse().context("bad --devices")?;
                if k < 2 {
                    bail!("--devices needs at least 2 (one in domain 1, one to attach)");
                }
                o.devices = Some(k);
            }
            _ => bail!(
                "usage: vusb-bench scale [--sizes 1,10,100,1000] [--reps N] [--vusb PATH] [--devices K]"
            ),
        }
    }
    if !o.vusb.exists() {
        bail!(
            "{} does not exist: build it (cargo build --release -p vusb-cli) or pass --vusb",
            o.vusb.display()
        );
    }
    Ok(o)
}

/// Run the benchmark and print its table.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    if !xlpeer::xl_available() {
        bail!("the real xl (xen-utils-4.17) is not installed");
    }
    let devs = match o.devices {
        None => "one device each (N + 1 host devices)".to_owned(),
        Some(k) => format!(
            "{k} host devices, in domains 1..{} (the others' controllers are empty)",
            k - 1
        ),
    };
    println!(
        "Each of N PV domains has a pv controller (2 ports); {devs}; measured: usbdev-attach 1 \
         (port 2), usb-list 1, usbdev-detach 1 0 2; {} repetitions, median wall ms; requests from the \
         xenstored -T trace.\n",
        o.reps
    );
    println!(
        "| domains | tool | attach req | attach ms | list req | list ms | detach req | detach ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for &n in &o.sizes {
        for row in measure(n, &o)? {
            println!("{row}");
        }
    }
    Ok(())
}

fn measure(n: u32, o: &Options) -> anyhow::Result<Vec<String>> {
    let mut cfg = FakeHostConfig::pv_guests(n);
    cfg.trace = true;
    let ndev = o.devices.unwrap_or(n as usize + 1);
    cfg.usb_devices = ndev;
    let host = FakeHost::start(&cfg).context("starting the fake host")?;
    populate(&host, n, ndev).context("setting up the domains' controllers")?;
    host.settle();
    let (bus, addr) = usb_addr(ndev - 1);
    let attach = format!("usbdev-attach 1 hostbus={bus} hostaddr={addr}");
    let steps = [attach.as_str(), "usb-list 1", "usbdev-detach 1 0 2"];
    let mut res: [Vec<Vec<Outcome>>; 2] = [vec![Vec::new(); 3], vec![Vec::new(); 3]];
    for _ in 0..o.reps {
        for (tool, r) in res.iter_mut().enumerate() {
            for (i, step) in steps.iter().enumerate() {
                let argv: Vec<&str> = step.split_whitespace().collect();
                let cmd = if tool == 0 {
                    host.xl_command(&argv)?
                } else {
                    host.vusb_command(&o.vusb, &argv)?
                };
                let out = xlpeer::run(&host, cmd)?;
                if out.rc != 0 {
                    bail!(
                        "{} {step} failed at {n} domains: {}",
                        ["xl", "vusb"][tool],
                        out.stderr.trim()
                    );
                }
                r[i].push(out);
                host.settle();
            }
        }
    }
    let _ = std::fs::remove_file(host.trace_path());
    Ok(res
        .iter()
        .enumerate()
        .map(|(tool, r)| {
            let cells: Vec<String> = r
                .iter()
                .map(|outs| {
                    let req = outs.first().and_then(|x| x.requests).unwrap_or(0);
                    format!("{req} | {:.1}", median_ms(outs))
                })
                .collect();
            format!("| {n} | {} | {} |", ["xl", "vusb"][tool], cells.join(" | "))
        })
        .collect())
}

fn median_ms(outs: &[Outcome]) -> f64 {
    let mut w: Vec<Duration> = outs.iter().map(|o| o.wall).collect();
    w.sort();
    w.get(w.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Give every domain d a pv controller 0 (2 ports) with fixture device
/// d-1 in port 1 (while there are devices to spare: the last one is kept
/// for the measured attach), as libxl and vusb leave it.
fn populate(host: &FakeHost, n: u32, ndev: usize) -> anyhow::Result<()> {
    let xs = host.client()?;
    let devs = devices(ndev);
    let usb = host.paths().sysfs_root.join("bus/usb");
    for d in 1..=n {
        if d as usize > ndev - 1 {
            vusb_xenstore::transaction(&xs, 32, |tx| -> anyhow::Result<()> {
                controller_nodes(&xs, tx, d, "")
            })?;
            continue;
        }
        let dev = &devs[d as usize - 1];
        let busid = dev.busid();
        vusb_xenstore::transaction(&xs, 32, |tx| -> anyhow::Result<()> {
            controller_nodes(&xs, tx, d, &busid)?;
            for i in 0..dev.interfaces.len() {
                let key = assign::encode_key(&format!("{busid}:1.{i}"));
                xs.write_str(
                    tx,
                    &format!("/libxl/usbback/{busid}/{key}/driver_path"),
                    &format!("/sys/bus/usb/drivers/{}", dev.interfaces[i].1),
                )?;
            }
            assign::claim(
                &xs,
                tx,
                &Assignment {
                    busid: vusb_core::BusId::parse(&busid)?,
                    domid: d,
                    ctrl: 0,
                    port: 1,
                    ctrl_type: UsbCtrlType::Pv,
                    hostbus: dev.bus,
                    hostaddr: dev.addr,
                    qom_id: None,
                    step: vusb_core::journal::Step::Done,
                    identity: None,
                },
            )?;
            Ok(())
        })?;
        for i in 0..dev.interfaces.len() {
            let intf = format!("{busid}:1.{i}");
            let drv = dev.interfaces[i].1;
            std::fs::remove_file(usb.join(format!("drivers/{drv}/{intf}")))?;
            std::fs::remove_file(usb.join(format!("devices/{intf}/driver")))?;
            std::os::unix::fs::symlink(
                format!("../../devices/{intf}"),
                usb.join(format!("drivers/usbback/{intf}")),
            )?;
            std::os::unix::fs::symlink(
                "../../drivers/usbback",
                usb.join(format!("devices/{intf}/driver")),
            )?;
        }
    }
    Ok(())
}

/// libxl's nodes of a connected pv controller 0 with 2 ports, `busid` in
/// port 1 (golden `pv/05*/after.txt`).
fn controller_nodes<X: Xenstore>(xs: &X, tx: TxId, d: u32, busid: &str) -> anyhow::Result<()> {
    let fe = format!("/local/domain/{d}/device/vusb/0");
    let be = format!("/local/domain/0/backend/vusb/{d}/0");
    let lx = format!("/libxl/{d}/device/vusb/0");
    let be_perms = [Perm::new(PermKind::None, 0), Perm::new(PermKind::Read, d)];
    let fe_perms = [Perm::new(PermKind::None, d), Perm::new(PermKind::Read, 0)];
    xs.mkdir(tx, &be)?;
    xs.set_perms(tx, &be, &be_perms)?;
    let fe_id = d.to_string();
    let common = [
        ("frontend", fe.as_str()),
        ("frontend-id", fe_id.as_str()),
        ("online", "1"),
        ("state", "4"),
        ("type", "pv"),
        ("usb-ver", "2"),
        ("num-ports", "2"),
        ("port", ""),
        ("port/1", busid),
        ("port/2", ""),
    ];
    for (k, v) in common {
        xs.write_str(tx, &format!("{be}/{k}"), v)?;
    }
    xs.mkdir(tx, &fe)?;
    xs.set_perms(tx, &fe, &fe_perms)?;
    for (k, v) in [
        ("backend", be.as_str()),
        ("backend-id", "0"),
        ("state", "4"),
        ("urb-ring-ref", "8"),
        ("conn-ring-ref", "9"),
        ("event-channel", "20"),
    ] {
        xs.write_str(tx, &format!("{fe}/{k}"), v)?;
    }
    xs.write_str(tx, &format!("{lx}/frontend"), &fe)?;
    xs.write_str(tx, &format!("{lx}/backend"), &be)?;
    for (k, v) in common.iter().skip(1) {
        let v = match *k {
            "state" => "1",
            "port/1" => "",
            _ => v,
        };
        xs.write_str(tx, &format!("{lx}/{k}"), v)?;
    }
    Ok(())
}
