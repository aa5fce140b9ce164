//! `vusb daemon-status [--json]`: ask the running daemon (its control
//! socket in the state directory) for its rules, matched devices, recent
//! decisions, errors and retry state. Exit 1 when no daemon answers.

use std::process::ExitCode;

use anyhow::Context as _;
use vusb_core::daemon::control;

use crate::context::Context;
use crate::output::out;

/// Run the command.
pub fn run(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let json = match args {
        [] => false,
        [j] if j == "--json" => true,
        _ => {
            eprintln!("usage: vusb daemon-status [--json]");
            return Ok(ExitCode::from(2));
        }
    };
    let reply = control::request(&ctx.paths, "status").with_context(|| {
        format!(
            "no vusb daemon answers on {}",
            control::socket_path(&ctx.paths).display()
        )
    })?;
    if json {
        out(&reply);
        return Ok(ExitCode::SUCCESS);
    }
    let v: serde_json::Value = serde_json::from_str(&reply).context("the daemon's reply")?;
    out(&format_text(&v));
    Ok(ExitCode::SUCCESS)
}

fn format_text(v: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut text = format!(
        "vusb daemon pid {}, {}\n",
        s(&v["pid"]),
        if v["ready"].as_bool() == Some(true) {
            "ready"
        } else {
            "starting"
        }
    );
    let c = &v["counters"];
    text.push_str(&format!(
        "uevents {}, passes {}, attaches {}, detaches {}, releases {}\n\nrules:\n",
        s(&c["uevents"]),
        s(&c["passes"]),
        s(&c["attaches"]),
        s(&c["detaches"]),
        s(&c["releases"])
    ));
    for r in v["rules"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "  {:<3} {:<16} {:<8} {:<32} {} [device {}, domid {}, retries {}]\n",
            s(&r["id"]),
            s(&r["domain"]),
            s(&r["mode"]),
            s(&r["selector"]),
            s(&r["state"]),
            s(&r["busid"]),
            s(&r["domid"]),
            s(&r["retries"])
        ));
    }
    for (title, key) in [("recent", "recent"), ("errors", "errors")] {
        text.push_str(&format!("\n{title}:\n"));
        for l in v[key].as_array().into_iter().flatten() {
            text.push_str(&format!("  {}\n", s(l)));
        }
    }
    text
}

/// Tell a running daemon that the rules changed (nothing when none runs).
pub fn poke(ctx: &Context) {
    let socket = control::socket_path(&ctx.paths);
    if let Some(plan) = ctx.paths.plan() {
        if socket.exists() {
            plan.record(vusb_core::dryrun::Effect::DaemonRequest {
                socket,
                request: "reload".into(),
            });
        }
        return;
    }
    if socket.exists()
        && let Err(e) = control::request(&ctx.paths, "reload")
    {
        log::info!("no daemon to tell about the rule change: {e}");
    }
}
