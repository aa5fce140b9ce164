//! Pure decoding of QMP's server messages, one JSON object per line:
//! the greeting, a command's return or error, and asynchronous events.
//! No I/O here, so every shape (and every malformed line) is unit-tested.

use serde_json::{Map, Value};

/// QEMU's version as announced in the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// `(major, minor, micro)`.
    pub version: (u64, u64, u64),
    /// Distribution package string (`Debian 1:7.2+dfsg-7+deb12u18+b3`).
    pub package: String,
    /// Capabilities offered (7.2 offers only `oob`, which vusb does not use).
    pub capabilities: Vec<String>,
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name (`DEVICE_DELETED`, `RESET`, ...).
    pub name: String,
    /// The event's `data` object (`Null` when absent).
    pub data: Value,
    /// QEMU's timestamp in microseconds since the epoch (0 when absent).
    pub timestamp_us: u64,
}

impl Event {
    /// For `DEVICE_DELETED`: the device id (`None` for id-less devices such
    /// as usb-storage's internal SCSI disk, or for other events).
    pub fn deleted_device(&self) -> Option<&str> {
        if self.name != "DEVICE_DELETED" {
            return None;
        }
        self.data.get("device").and_then(Value::as_str)
    }
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The greeting sent once on connect.
    Greeting(Greeting),
    /// A successful reply.
    Return {
        /// The command id echoed back.
        id: Option<Value>,
        /// The return value.
        value: Value,
    },
    /// An error reply.
    Error {
        /// The command id echoed back.
        id: Option<Value>,
        /// QMP error class.
        class: String,
        /// Human-readable message.
        desc: String,
    },
    /// An asynchronous event.
    Event(Event),
}

/// Decode one line. `Err` carries a short description for the error.
pub fn parse(line: &[u8]) -> Result<Message, String> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| format!("{e} in {:?}", shorten(line)))?;
    let Value::Object(mut obj) = value else {
        return Err(format!("not a JSON object: {:?}", shorten(line)));
    };
    if let Some(q) = obj.remove("QMP") {
        return parse_greeting(&q).ok_or_else(|| format!("bad greeting {:?}", shorten(line)));
    }
    let id = obj.remove("id");
    if let Some(value) = obj.remove("return") {
        return Ok(Message::Return { id, value });
    }
    if let Some(err) = obj.remove("error") {
        let class = str_field(&err, "class")
            .unwrap_or("GenericError")
            .to_string();
        let desc = str_field(&err, "desc").unwrap_or("").to_string();
        return Ok(Message::Error { id, class, desc });
    }
    if let Some(Value::String(name)) = obj.remove("event") {
        return Ok(Message::Event(parse_event(name, &mut obj)));
    }
    Err(format!("unknown message shape {:?}", shorten(line)))
}

fn parse_event(name: String, obj: &mut Map<String, Value>) -> Event {
    let data = obj.remove("data").unwrap_or(Value::Null);
    let timestamp_us = obj
        .get("timestamp")
        .map(|t| {
            let s = t.get("seconds").and_then(Value::as_u64).unwrap_or(0);
            let us = t.get("microseconds").and_then(Value::as_u64).unwrap_or(0);
            s.saturating_mul(1_000_000).saturating_add(us)
        })
        .unwrap_or(0);
    Event {
        name,
        data,
        timestamp_us,
    }
}

fn parse_greeting(q: &Value) -> Option<Message> {
    let v = q.get("version")?;
    let qemu = v.get("qemu")?;
    let num = |k: &str| qemu.get(k).and_then(Value::as_u64);
    let version = (num("major")?, num("minor")?, num("micro")?);
    let package = str_field(v, "package").unwrap_or("").to_string();
    let capabilities = q
        .get("capabilities")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Message::Greeting(Greeting {
        version,
        package,
        capabilities,
    }))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The first 120 bytes of a line, lossily decoded, for error messages.
pub fn shorten(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(120)]);
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn greeting_of_qemu_7_2() {
        let g = br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#;
        let Message::Greeting(g) = parse(g).unwrap() else {
            panic!("not a greeting")
        };
        assert_eq!(g.version, (7, 2, 22));
        assert_eq!(g.capabilities, vec!["oob".to_string()]);
        assert!(g.package.starts_with("Debian"));
    }

    #[test]
    fn return_error_event() {
        let r = parse(br#"{"return": {}, "id": 3}"#).unwrap();
        assert_eq!(
            r,
            Message::Return {
                id: Some(3.into()),
                value: Value::Object(Map::new())
            }
        );
        let e =
            parse(br#"{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}"#)
                .unwrap();
        let Message::Error { id, class, desc } = e else {
            panic!()
        };
        assert_eq!(
            (id, class.as_str(), desc.as_str()),
            (None, "DeviceNotFound", "Device 'nope' not found")
        );
        let ev = parse(br#"{"timestamp": {"seconds": 2, "microseconds": 5}, "event": "DEVICE_DELETED", "data": {"device": "tab0", "path": "/machine/peripheral/tab0"}}"#).unwrap();
        let Message::Event(ev) = ev else { panic!() };
        assert_eq!(ev.deleted_device(), Some("tab0"));
        assert_eq!(ev.timestamp_us, 2_000_005);
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            &b"garbage"[..],
            b"[1,2]",
            b"{}",
            b"{\"QMP\": 1}",
            b"{\"event\": 3}",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
