//! A fake QEMU QMP server for the fake host's HVM guests (the device model
//! libxl's `devicemodel` controllers talk to), in the manner of QEMU 7.2:
//! greeting, `qmp_capabilities`, `device_add` / `device_del` keeping a set
//! of device ids (a duplicate id or an unknown one fails as QEMU does),
//! `query-status` / `query-version`, `CommandNotFound` for anything else.
//!
//! Every command received is appended to a log as canonical JSON (keys
//! sorted, the client's `"id"` removed, one line per command), so the
//! commands of `xl` and of vusb compare equal when they are the same.
//! A simulation: no USB device exists behind `usb-host`.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::{Value, json};

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct FakeQmp {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeQmp {
    /// Listen on `socket`, logging commands to `log`.
    pub fn start(socket: &Path, log: &Path) -> io::Result<FakeQmp> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let log = log.to_owned();
        let thread = std::thread::Builder::new()
            .name("fake-qmp".into())
            .spawn(move || {
                let mut devices = HashSet::new();
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = conn {
                        if let Err(e) = session(c, &log, &mut devices) {
                            log::debug!("fake QMP session: {e}");
                        }
                    }
                }
            })?;
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

fn session(c: UnixStream, log: &Path, devices: &mut HashSet<String>) -> io::Result<()> {
    let mut w = c.try_clone()?;
    let greeting = json!({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},
        "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}});
    w.write_all(format!("{greeting}\r\n").as_bytes())?;
    for msg in serde_json::Deserializer::from_reader(c).into_iter::<Value>() {
        let Ok(mut msg) = msg else { break };
        let id = msg.as_object_mut().and_then(|m| m.remove("id"));
        let mut f = OpenOptions::new().create(true).append(true).open(log)?;
        writeln!(f, "{}", canonical(&msg))?;
        let cmd = msg["execute"].as_str().unwrap_or("");
        let dev = msg["arguments"]["id"].as_str().unwrap_or("").to_owned();
        let mut rep = match cmd {
            "device_add" if devices.contains(&dev) => json!({"error": {"class": "GenericError",
                "desc": format!("Duplicate device ID '{dev}'")}}),
            "device_add" => {
                devices.insert(dev);
                json!({"return": {}})
            }
            "device_del" if !devices.remove(&dev) => json!({"error": {"class": "DeviceNotFound",
                "desc": format!("Device '{dev}' not found")}}),
            "device_del" | "qmp_capabilities" => json!({"return": {}}),
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
    }
    Ok(())
}
