//! Typed helpers over [`Qmp::execute`] for the commands USB hot-plug needs.
//!
//! `device_add` arguments keep the order they were given in (serde_json's
//! `preserve_order`), so a caller can reproduce libxl's exact requests.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::{Qmp, Stream};
use crate::error::{Error, Result};

/// QOM path of the devices that have an id.
pub const PERIPHERAL: &str = "/machine/peripheral";

/// The arguments of one `device_add`, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceAdd {
    args: Map<String, Value>,
}

impl DeviceAdd {
    /// No arguments yet.
    pub fn new() -> DeviceAdd {
        DeviceAdd::default()
    }

    /// Append one argument (a later one with the same key replaces it in
    /// place).
    pub fn arg(mut self, key: &str, value: impl Into<Value>) -> DeviceAdd {
        self.args.insert(key.to_string(), value.into());
        self
    }

    /// The `id` argument, if given.
    pub fn id(&self) -> Option<&str> {
        self.args.get("id").and_then(Value::as_str)
    }

    /// The `driver` argument, if given.
    pub fn driver(&self) -> Option<&str> {
        self.args.get("driver").and_then(Value::as_str)
    }

    /// The arguments as a JSON object.
    pub fn arguments(&self) -> &Map<String, Value> {
        &self.args
    }
}

/// One entry of `qom-list /machine/peripheral`: a device with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peripheral {
    /// The device id (`xenusb-0`).
    pub id: String,
    /// Its QEMU driver (`nec-usb-xhci`), from the `child<...>` type.
    pub driver: String,
}

/// One PCI function of `query-pci`, bridges flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// PCI bus number.
    pub bus: u64,
    /// Slot.
    pub slot: u64,
    /// Function.
    pub function: u64,
    /// Vendor id.
    pub vendor: u64,
    /// Device id.
    pub device: u64,
    /// The qdev id (`""` when none).
    pub qdev_id: String,
    /// Class description (`USB controller`).
    pub class_desc: String,
}

impl<S: Stream> Qmp<S> {
    /// `device_add` with the arguments in their order.
    pub fn device_add(&mut self, args: &DeviceAdd) -> Result<()> {
        self.execute("device_add", Some(args.args.clone()))
            .map(drop)
    }

    /// `device_del` of `id`. QEMU's answer means the request was accepted,
    /// not that the device is gone (see [`Qmp::wait_device_deleted`]).
    pub fn device_del(&mut self, id: &str) -> Result<()> {
        let mut args = Map::new();
        args.insert("id".into(), id.into());
        self.execute("device_del", Some(args)).map(drop)
    }

    /// Wait for `DEVICE_DELETED` of `id` (already queued or arriving within
    /// `timeout`). `Ok(false)`: it did not come in time.
    pub fn wait_device_deleted(&mut self, id: &str, timeout: Duration) -> Result<bool> {
        let ev = self.wait_event(timeout, |ev| ev.deleted_device() == Some(id))?;
        Ok(ev.is_some())
    }

    /// `qom-list PATH`: `(name, type)` of each property or child.
    pub fn qom_list(&mut self, path: &str) -> Result<Vec<(String, String)>> {
        let mut args = Map::new();
        args.insert("path".into(), path.into());
        let v = self.execute("qom-list", Some(args))?;
        let list = v.as_array().ok_or_else(|| unexpected("qom-list", &v))?;
        Ok(list
            .iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?;
                let ty = p.get("type")?.as_str()?;
                Some((name.to_string(), ty.to_string()))
            })
            .collect())
    }

    /// `qom-get PATH PROPERTY`.
    pub fn qom_get(&mut self, path: &str, property: &str) -> Result<Value> {
        let mut args = Map::new();
        args.insert("path".into(), path.into());
        args.insert("property".into(), property.into());
        self.execute("qom-get", Some(args))
    }

    /// The devices that have an id, with their drivers.
    pub fn peripherals(&mut self) -> Result<Vec<Peripheral>> {
        Ok(self
            .qom_list(PERIPHERAL)?
            .into_iter()
            .filter_map(|(id, ty)| {
                let driver = ty.strip_prefix("child<")?.strip_suffix('>')?;
                Some(Peripheral {
                    id,
                    driver: driver.to_string(),
                })
            })
            .collect())
    }

    /// `query-pci`, every function of every bus, bridges flattened.
    pub fn query_pci(&mut self) -> Result<Vec<PciFunction>> {
        let v = self.execute("query-pci", None)?;
        let buses = v.as_array().ok_or_else(|| unexpected("query-pci", &v))?;
        let mut out = Vec::new();
        for bus in buses {
            collect_pci(bus.get("devices"), &mut out);
        }
        Ok(out)
    }

    /// `x-query-usb` (QEMU 7.2, unstable): the text of HMP `info usb`.
    pub fn x_query_usb(&mut self) -> Result<String> {
        let v = self.execute("x-query-usb", None)?;
        v.get("human-readable-text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| unexpected("x-query-usb", &v))
    }
}

fn collect_pci(devices: Option<&Value>, out: &mut Vec<PciFunction>) {
    let Some(devices) = devices.and_then(Value::as_array) else {
        return;
    };
    for d in devices {
        let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let id = d.get("id");
        out.push(PciFunction {
            bus: num(d.get("bus")),
            slot: num(d.get("slot")),
            function: num(d.get("function")),
            vendor: num(id.and_then(|i| i.get("vendor"))),
            device: num(id.and_then(|i| i.get("device"))),
            qdev_id: d
                .get("qdev_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            class_desc: d
                .get("class_info")
                .and_then(|c| c.get("desc"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
        if let Some(bridge) = d.get("pci_bridge") {
            collect_pci(bridge.get("devices"), out);
        }
    }
}

fn unexpected(command: &str, v: &Value) -> Error {
    let mut s = v.to_string();
    s.truncate(120);
    Error::UnexpectedReturn {
        command: command.to_string(),
        detail: s,
    }
}
