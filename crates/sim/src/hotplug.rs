//! Hot-plug on the simulated host's sysfs fixture: unplug a device,
//! plug it back (a fresh device address, as the kernel allocates one at
//! every enumeration), optionally on another bus (bus renumbering: the
//! busid changes, `1-1` becomes `3-1`). What the kernel would also do —
//! announce it with uevents — is [`announce`]: the simulated host has no
//! kernel, so the uevents go to a daemon listening on a Unix datagram
//! socket (`vusb daemon --uevents unix:PATH`), in the kernel's format.
//!
//! An unplugged device's sysfs directories are kept under
//! `<sysfs_root>/sim-unplugged/<busid>/` (outside `bus/usb`, so nothing
//! sees them) with each interface's host driver; plugging it back binds
//! its interfaces to those host drivers, as the kernel's probe would
//! (never to usbback: a new enumeration starts on the host).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use vusb_core::daemon::uevent::{self, Uevent};

use super::Error;

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::WriteFixture {
        path: path.to_owned(),
        source,
    }
}

fn usb_dir(sysfs_root: &Path) -> PathBuf {
    sysfs_root.join("bus/usb")
}

fn stash_dir(sysfs_root: &Path, busid: &str) -> PathBuf {
    sysfs_root.join("sim-unplugged").join(busid)
}

/// The device and its interfaces: `busid` and `busid:*`.
fn entries(devs: &Path, busid: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for e in fs::read_dir(devs).map_err(err(devs))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == busid || name.starts_with(&format!("{busid}:")) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The host driver an interface goes back to on re-plug: the one it is on,
/// unless that is usbback (then by class, as the fixture binds them).
fn host_driver(dir: &Path) -> Option<String> {
    let bound = fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
    match bound.as_deref() {
        Some("usbback") | None => {
            let class = fs::read_to_string(dir.join("bInterfaceClass")).ok()?;
            match class.trim() {
                "08" => Some("usb-storage".into()),
                "03" => Some("usbhid".into()),
                "09" => Some("hub".into()),
                _ => None,
            }
        }
        Some(d) => Some(d.to_owned()),
    }
}

/// Unplug `busid`: its directories leave `bus/usb/devices`, its driver
/// links go.
pub fn unplug(sysfs_root: &Path, busid: &str) -> Result<(), Error> {
    let usb = usb_dir(sysfs_root);
    let devs = usb.join("devices");
    let names = entries(&devs, busid)?;
    if !names.iter().any(|n| n == busid) {
        return Err(err(&devs.join(busid))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such device plugged in",
        )));
    }
    let stash = stash_dir(sysfs_root, busid);
    let _ = fs::remove_dir_all(&stash);
    fs::create_dir_all(&stash).map_err(err(&stash))?;
    for name in &names {
        let dir = devs.join(name);
        if name != busid
            && let Some(d) = host_driver(&dir)
        {
            let f = stash.join(format!("{name}.driver"));
            fs::write(&f, &d).map_err(err(&f))?;
        }
        if let Ok(link) = fs::read_link(dir.join("driver"))
            && let Some(drv) = link.file_name()
        {
            let back = usb.join("drivers").join(drv).join(name);
            let _ = fs::remove_file(&back);
        }
        let _ = fs::remove_file(dir.join("driver"));
        let to = stash.join(name);
        fs::rename(&dir, &to).map_err(err(&dir))?;
    }
    Ok(())
}

fn link(target: &str, at: &Path) -> Result<(), Error> {
    let _ = fs::remove_file(at);
    symlink(target, at).map_err(err(at))
}

fn bind(usb: &Path, name: &str, driver: &str) -> Result<(), Error> {
    link(
        &format!("../../drivers/{driver}"),
        &usb.join("devices").join(name).join("driver"),
    )?;
    link(
        &format!("../../devices/{name}"),
        &usb.join("drivers").join(driver).join(name),
    )
}

/// Make root hub `usb<bus>` if the fixture has none (a copy of `usb1`'s
/// attributes with the bus number changed).
fn ensure_root_hub(usb: &Path, bus: u32) -> Result<(), Error> {
    let devs = usb.join("devices");
    let name = format!("usb{bus}");
    if devs.join(&name).exists() {
        return Ok(());
    }
    let model = devs.join("usb1");
    for (from, to) in [
        (model.clone(), devs.join(&name)),
        (devs.join("usb1:1.0"), devs.join(format!("{name}:1.0"))),
    ] {
        fs::create_dir_all(&to).map_err(err(&to))?;
        for e in fs::read_dir(&from).map_err(err(&from))?.flatten() {
            let ft = e.file_type().map_err(err(&e.path()))?;
            if ft.is_file() {
                fs::copy(e.path(), to.join(e.file_name())).map_err(err(&e.path()))?;
            }
        }
    }
    let busnum = devs.join(&name).join("busnum");
    fs::write(&busnum, format!("{bus}\n")).map_err(err(&busnum))?;
    bind(usb, &name, "usb")?;
    bind(usb, &format!("{name}:1.0"), "hub")
}

/// The next free device address on `bus`.
fn next_devnum(devs: &Path, bus: u32) -> Result<u32, Error> {
    let mut max = 1;
    for e in fs::read_dir(devs).map_err(err(devs))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let on_bus = name == format!("usb{bus}")
            || (name.starts_with(&format!("{bus}-")) && !name.contains(':'));
        if on_bus
            && let Ok(t) = fs::read_to_string(e.path().join("devnum"))
            && let Ok(n) = t.trim().parse::<u32>()
        {
            max = max.max(n);
        }
    }
    Ok(max + 1)
}

/// Plug an unplugged device back in, on `bus` (default: its old bus).
/// Returns its busid now.
pub fn plug(sysfs_root: &Path, busid: &str, bus: Option<u32>) -> Result<String, Error> {
    let usb = usb_dir(sysfs_root);
    let devs = usb.join("devices");
    let stash = stash_dir(sysfs_root, busid);
    if !stash.join(busid).exists() {
        return Err(err(&stash)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "this device was not unplugged",
        )));
    }
    let (old_bus, ports) = busid.split_once('-').unwrap_or((busid, ""));
    let bus = match bus {
        Some(b) => b,
        None => old_bus.parse().map_err(|_| {
            err(&stash)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "busid without a bus number",
            ))
        })?,
    };
    let new_busid = format!("{bus}-{ports}");
    if devs.join(&new_busid).exists() {
        return Err(err(&devs.join(&new_busid))(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a device is plugged in there",
        )));
    }
    ensure_root_hub(&usb, bus)?;
    let devnum = next_devnum(&devs, bus)?;
    let mut names: Vec<String> = fs::read_dir(&stash)
        .map_err(err(&stash))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".driver"))
        .collect();
    names.sort();
    for name in names {
        let new_name = format!("{new_busid}{}", &name[busid.len()..]);
        let from = stash.join(&name);
        let to = devs.join(&new_name);
        fs::rename(&from, &to).map_err(err(&from))?;
        if name == busid {
            for (k, v) in [("busnum", bus), ("devnum", devnum)] {
                let f = to.join(k);
                fs::write(&f, format!("{v}\n")).map_err(err(&f))?;
            }
            bind(&usb, &new_name, "usb")?;
        } else if let Ok(d) = fs::read_to_string(stash.join(format!("{name}.driver"))) {
            bind(&usb, &new_name, d.trim())?;
        }
    }
    let _ = fs::remove_dir_all(&stash);
    Ok(new_busid)
}

/// Give an unplugged device another identity before it is plugged back,
/// as a device does when it re-enumerates in firmware-update mode
/// (`idVendor`, `idProduct`: 4 hex digits each).
pub fn set_identity(
    sysfs_root: &Path,
    busid: &str,
    vendor: &str,
    product: &str,
) -> Result<(), Error> {
    let dir = stash_dir(sysfs_root, busid).join(busid);
    for (k, v) in [("idVendor", vendor), ("idProduct", product)] {
        let f = dir.join(k);
        if !f.exists() {
            return Err(err(&f)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "this device was not unplugged",
            )));
        }
        fs::write(&f, format!("{v}\n")).map_err(err(&f))?;
    }
    Ok(())
}

/// The uevent `DEVPATH` of a fixture device.
pub fn devpath(busid: &str) -> String {
    let bus = busid.split('-').next().unwrap_or("0");
    format!("/devices/platform/vusb-sim/usb{bus}/{busid}")
}

/// Send the kernel's uevents for `action` (`add` is followed by `bind`, as
/// the kernel does once the device's driver is bound) to a daemon
/// listening on `socket`. `Ok(false)` when none listens.
pub fn announce(socket: &Path, action: &str, busid: &str) -> std::io::Result<bool> {
    let path = devpath(busid);
    let single = [action];
    let actions: &[&str] = match action {
        "add" => &["add", "bind"],
        "remove" => &["unbind", "remove"],
        _ => &single,
    };
    let mut sent = false;
    for a in actions {
        sent |= uevent::send(socket, &Uevent::for_device(a, &path))?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unplug_then_plug_gives_a_new_address_and_host_drivers() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        crate::fixture::write_fixture(sys, 2).unwrap();
        let devs = sys.join("bus/usb/devices");
        // Pretend 1-1 was given to usbback.
        fs::remove_file(sys.join("bus/usb/drivers/usb-storage/1-1:1.0")).unwrap();
        bind(&sys.join("bus/usb"), "1-1:1.0", "usbback").unwrap();
        unplug(sys, "1-1").unwrap();
        assert!(!devs.join("1-1").exists());
        assert!(!devs.join("1-1:1.0").exists());
        assert!(!sys.join("bus/usb/drivers/usbback/1-1:1.0").exists());
        assert!(unplug(sys, "1-1").is_err(), "not plugged in");
        assert_eq!(plug(sys, "1-1", None).unwrap(), "1-1");
        assert_eq!(fs::read_to_string(devs.join("1-1/devnum")).unwrap(), "4\n");
        let l = fs::read_link(devs.join("1-1:1.0/driver")).unwrap();
        assert_eq!(l, PathBuf::from("../../drivers/usb-storage"));
        assert!(sys.join("bus/usb/drivers/usb-storage/1-1:1.0").exists());
        assert!(plug(sys, "1-1", None).is_err(), "not unplugged");
    }

    #[test]
    fn plugging_on_another_bus_renumbers() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        crate::fixture::write_fixture(sys, 2).unwrap();
        unplug(sys, "1-2").unwrap();
        assert_eq!(plug(sys, "1-2", Some(3)).unwrap(), "3-2");
        let devs = sys.join("bus/usb/devices");
        assert_eq!(fs::read_to_string(devs.join("3-2/busnum")).unwrap(), "3\n");
        assert_eq!(fs::read_to_string(devs.join("3-2/devnum")).unwrap(), "2\n");
        assert!(devs.join("usb3").exists());
        assert!(devs.join("3-2:1.2").exists());
        let all = vusb_host::discover(sys).unwrap();
        let d = all.iter().find(|d| d.busid.as_str() == "3-2").unwrap();
        assert_eq!(d.vid_pid(), "046d:c52b");
        assert_eq!(d.interfaces.len(), 3);
    }
}
