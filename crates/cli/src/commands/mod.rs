//! One file per command, named after it. Each parses its arguments, calls
//! the operation in `vusb_core::ops`, and prints.

pub mod completions;
pub mod config_apply;
pub mod config_dump;
pub mod config_show;
pub mod daemon;
pub mod daemon_status;
pub mod help;
pub mod manpage;
pub mod qemu_vm;
pub mod sim;
pub mod usb_assignable_list;
pub mod usb_list;
pub mod usb_recover;
pub mod usb_release;
pub mod usb_rule_add;
pub mod usb_rule_explain;
pub mod usb_rule_list;
pub mod usb_rule_remove;
pub mod usbctrl_attach;
pub mod usbctrl_detach;
pub mod usbdev_attach;
pub mod usbdev_detach;
pub mod xl_args;
