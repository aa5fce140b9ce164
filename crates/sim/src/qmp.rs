//! A fake QEMU QMP server: the device model of simulated HVM guests (in
//! `vusb sim` and in the test support's fake host) (the device model
//! libxl's `devicemodel` controllers talk to), in the manner of QEMU 7.2:
//! greeting, `qmp_capabilities`, `device_add` / `device_del` keeping the
//! devices by id (a duplicate id or an unknown one fails as QEMU does; a
//! removed `usb-host`, `usb-tablet`, `usb-mouse` or `usb-kbd` is followed
//! by its `DEVICE_DELETED` event, a removed
//! controller goes at once as if the guest had acknowledged the unplug),
//! `qom-list /machine/peripheral` (the devices, `child<driver>`),
//! `query-status` / `query-version`, `CommandNotFound` for anything else.
//!
//! The state-changing commands (`device_add`, `device_del`) are appended to
//! a log as canonical JSON: keys sorted, the client's `"id"` removed, and
//! argument values as strings — QEMU 7.2 turns `device_add` arguments into
//! option strings (`qemu_opts_from_qdict`), so `4` and `"4"` are the same
//! request. Read-only queries and `qmp_capabilities` are not logged: how
//! many connections and checks a client makes is its own business.
//! A simulation: no USB device exists behind `usb-host`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::{Value, json};

use super::Error;

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct FakeQmp {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeQmp {
    /// Listen on `socket`, logging commands to `log`.
    pub fn start(socket: &Path, log: &Path) -> Result<FakeQmp, Error> {
        let serve_err = |source| Error::Serve {
            path: socket.to_owned(),
            source,
        };
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).map_err(serve_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let log = log.to_owned();
        let thread = std::thread::Builder::new()
            .name("fake-qmp".into())
            .spawn(move || {
                let mut devices = BTreeMap::new();
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = conn
                        && let Err(e) = session(c, &log, &mut devices)
                    {
                        log::debug!("fake QMP session: {e}");
                    }
                }
            })
            .map_err(Error::SpawnThread)?;
        Ok(FakeQmp {
            socket: socket.to_owned(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FakeQmp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// JSON with object keys sorted, recursively.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The logged form of a command: canonical, without `id`, argument
/// scalars as strings.
fn logged(msg: &Value) -> Value {
    let mut m = msg.clone();
    if let Some(args) = m.get_mut("arguments").and_then(Value::as_object_mut) {
        for v in args.values_mut() {
            match v {
                Value::Number(n) => *v = Value::String(n.to_string()),
                Value::Bool(b) => *v = Value::String(if *b { "on" } else { "off" }.into()),
                _ => {}
            }
        }
    }
    canonical(&m)
}

fn session(c: UnixStream, log: &Path, devices: &mut BTreeMap<String, String>) -> io::Result<()> {
    let mut w = c.try_clone()?;
    let greeting = json!({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},
        "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}});
    w.write_all(format!("{greeting}\r\n").as_bytes())?;
    for msg in serde_json::Deserializer::from_reader(c).into_iter::<Value>() {
        let Ok(mut msg) = msg else { break };
        let id = msg.as_object_mut().and_then(|m| m.remove("id"));
        let cmd = msg["execute"].as_str().unwrap_or("").to_owned();
        if cmd == "device_add" || cmd == "device_del" {
            let mut f = OpenOptions::new().create(true).append(true).open(log)?;
            writeln!(f, "{}", logged(&msg))?;
        }
        let dev = msg["arguments"]["id"].as_str().unwrap_or("").to_owned();
        let mut event = None;
        let mut rep = match cmd.as_str() {
            "device_add" if devices.contains_key(&dev) => json!({"error": {"class": "GenericError",
                "desc": format!("Duplicate device ID '{dev}'")}}),
            "device_add" => {
                let driver = msg["arguments"]["driver"].as_str().unwrap_or("").to_owned();
                devices.insert(dev, driver);
                json!({"return": {}})
            }
            "device_del" => match devices.remove(&dev) {
                None => json!({"error": {"class": "DeviceNotFound",
                    "desc": format!("Device '{dev}' not found")}}),
                Some(driver) => {
                    // USB devices (host and emulated) leave at once with
                    // their event; controllers go silently (see above).
                    if driver == "usb-host"
                        || vusb_core::devicemodel::EmulatedKind::from_qemu_driver(&driver).is_some()
                    {
                        event = Some(json!({"event": "DEVICE_DELETED",
                            "data": {"device": dev, "path": format!("/machine/peripheral/{dev}")},
                            "timestamp": {"seconds": 1700000000, "microseconds": 0}}));
                    }
                    json!({"return": {}})
                }
            },
            "qom-list" if msg["arguments"]["path"] == "/machine/peripheral" => {
                let list: Vec<Value> = devices
                    .iter()
                    .map(|(id, drv)| json!({"name": id, "type": format!("child<{drv}>")}))
                    .collect();
                json!({ "return": list })
            }
            "qmp_capabilities" => json!({"return": {}}),
            "query-status" => {
                json!({"return": {"status": "prelaunch", "singlestep": false, "running": false}})
            }
            "query-version" => {
                json!({"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}})
            }
            _ => json!({"error": {"class": "CommandNotFound",
                "desc": format!("The command {cmd} has not been found")}}),
        };
        if let (Some(id), Some(m)) = (id, rep.as_object_mut()) {
            m.insert("id".into(), id);
        }
        w.write_all(format!("{rep}\r\n").as_bytes())?;
        if let Some(ev) = event {
            w.write_all(format!("{ev}\r\n").as_bytes())?;
        }
    }
    Ok(())
}
