//! `vusb completions bash|zsh|fish` and `vusb manpage`, generated from the
//! one CLI description: the scripts are run by the real shells (bash's
//! completion function called as bash calls it; fish's `complete -C`;
//! zsh: syntax, and `_vusb` run with words/CURRENT set and compadd
//! recording), with domain names and device selectors asked
//! back from `vusb __complete` against the simulated host (`vusb_sim`);
//! the man page is rendered by groff. A missing shell or groff skips with
//! a message, except under `CI=true` where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{Sim, bare, start, stdout, text};

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true (scripts/install-deps)"
        );
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

fn script(shell: &str, dir: &Path) -> std::path::PathBuf {
    let o = bare(&["completions", shell]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let p = dir.join(format!("vusb.{shell}"));
    std::fs::write(&p, &o.stdout).unwrap();
    p
}

/// PATH with the built vusb first, as an installed one would be.
fn path_with_vusb() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_vusb")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What bash's completion offers for `words` (as bash splits them, the
/// cursor at the end of the last word).
fn bash_complete(sim: &Sim, file: &Path, words: &[&str], line: &str) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; _vusb_dynamic vusb '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        words.len() - 1,
        line.len(),
        words[words.len() - 1],
        words
            .get(words.len().wrapping_sub(2))
            .copied()
            .unwrap_or(""),
    );
    let o = Command::new("bash")
        .args(["-c", &prog])
        .envs(sim.host.env())
        .env("PATH", path_with_vusb())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    stdout(&o)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_domains_and_selectors() {
    if !have("bash") {
        return;
    }
    let sim = start();
    let dir = tempfile::tempdir().unwrap();
    let f = script("bash", dir.path());
    assert_eq!(
        bash_complete(&sim, &f, &["vusb", "usb-l"], "vusb usb-l"),
        ["usb-list"]
    );
    let doms = bash_complete(&sim, &f, &["vusb", "usb-list", "g"], "vusb usb-list g");
    assert_eq!(doms, ["guest1", "guest2", "guest3"]);
    let doms = bash_complete(
        &sim,
        &f,
        &["vusb", "-v", "usbdev-attach", ""],
        "vusb -v usbdev-attach ",
    );
    assert!(
        doms.contains(&"guest2".to_owned()) && doms.contains(&"2".to_owned()),
        "{doms:?}"
    );
    // bash splits busid=1- into busid, =, 1-: the reply is what follows.
    let sel = bash_complete(
        &sim,
        &f,
        &["vusb", "usbdev-attach", "guest1", "busid", "=", "1-"],
        "vusb usbdev-attach guest1 busid=1-",
    );
    assert_eq!(sel, ["1-1", "1-2", "1-3", "1-4"]);
    let sel = bash_complete(
        &sim,
        &f,
        &["vusb", "usbdev-attach", "guest1", "vendor", "=", ""],
        "vusb usbdev-attach guest1 vendor=",
    );
    assert!(
        sel.contains(&"=046d".to_owned()) || sel.contains(&"046d".to_owned()),
        "{sel:?}"
    );
    // Global options come from the description.
    let opts = bash_complete(&sim, &f, &["vusb", "--sys"], "vusb --sys");
    assert_eq!(opts, ["--sysfs-root"]);
}

#[test]
fn fish_completes_commands_domains_and_selectors() {
    if !have("fish") {
        return;
    }
    let sim = start();
    let dir = tempfile::tempdir().unwrap();
    let f = script("fish", dir.path());
    let complete = |line: &str| -> Vec<String> {
        let o = Command::new("fish")
            .args([
                "--no-config",
                "-c",
                &format!("source '{}'; complete -C '{line}'", f.display()),
            ])
            .envs(sim.host.env())
            .env("PATH", path_with_vusb())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        stdout(&o)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    let c = complete("vusb usbdev-");
    assert!(c.contains(&"usbdev-attach".to_owned()), "{c:?}");
    let c = complete("vusb usb-list ");
    assert!(
        c.contains(&"guest1".to_owned()) && c.contains(&"guest3".to_owned()),
        "{c:?}"
    );
    let c = complete("vusb usbdev-attach guest1 busid=");
    assert!(c.contains(&"busid=1-2".to_owned()), "{c:?}");
    let c = complete("vusb usbdev-attach guest1 ");
    assert!(
        c.contains(&"vendor=046d".to_owned()) && c.contains(&"--force".to_owned()),
        "{c:?}"
    );
}

#[test]
fn zsh_script_parses_and_hooks_vusb() {
    if !have("zsh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = script("zsh", dir.path());
    let o = Command::new("zsh").arg("-n").arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let s = std::fs::read_to_string(&f).unwrap();
    assert!(s.starts_with("#compdef vusb"), "{s}");
    assert!(
        s.contains("_vusb_static() {"),
        "clap's function kept as fallback"
    );
    assert!(s.contains("vusb __complete domains"), "{s}");
    assert!(s.contains("vusb __complete selectors"), "{s}");
    // The hook is defined before the dispatch that calls it.
    assert!(s.find("\n_vusb() {").unwrap() < s.find("funcstack[1]").unwrap());
    // Run it as zsh's completion system would, with compadd recording what
    // it is offered (filtering by prefix is compadd's job).
    let sim = start();
    let run = |words: &str, current: u32| -> Vec<String> {
        let prog = format!(
            "compdef() {{ :; }}\n\
             compadd() {{ while (( $# )); do case $1 in (-a) shift; print -l -- \"${{(@P)1}}\"; shift;; (-S) shift 2;; (*) shift;; esac; done }}\n\
             source '{}'\nwords=({words}); CURRENT={current}; _vusb",
            f.display()
        );
        let o = Command::new("zsh")
            .args(["-f", "-c", &prog])
            .envs(sim.host.env())
            .env("PATH", path_with_vusb())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        stdout(&o).lines().map(str::to_owned).collect()
    };
    let d = run("vusb usb-list g", 3);
    assert!(d.contains(&"guest2".to_owned()), "{d:?}");
    let sel = run("vusb -v usbdev-attach guest1 bus", 5);
    assert!(
        sel.contains(&"busid=1-2".to_owned()) && sel.contains(&"--force".to_owned()),
        "{sel:?}"
    );
    let keys = run("vusb usbctrl-attach guest1 ty", 4);
    assert!(keys.contains(&"type=qusb".to_owned()), "{keys:?}");
}

#[test]
fn dynamic_values_come_from_xenstore_and_sysfs_and_never_fail() {
    let sim = start();
    let d = sim.ok(&["__complete", "domains"]);
    assert_eq!(d, "1\n2\n3\nguest1\nguest2\nguest3\n");
    let s = sim.ok(&["__complete", "selectors"]);
    for w in [
        "busid=1-2",
        "hostbus=1",
        "hostaddr=3",
        "vendor=046d",
        "product=c52b",
        "portpath=usb1-2",
        "--force",
    ] {
        assert!(s.lines().any(|l| l == w), "{w} missing in {s}");
    }
    assert!(!s.contains("busid=usb1"), "root hubs are not offered: {s}");
    // No host at all: nothing, status 0.
    let o = bare(&["--sysfs-root", "/nonexistent", "__complete", "domains"])
        .env("XENSTORED_PATH", "/nonexistent/socket")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn manpage_documents_every_command_and_renders() {
    let o = bare(&["manpage"]).output().unwrap();
    assert!(o.status.success());
    let page = stdout(&o);
    assert!(page.contains(".TH vusb 1"), "{page}");
    let help = stdout(&bare(&["--help"]).output().unwrap());
    for c in help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
    {
        let name = c.split_whitespace().next().unwrap().replace('-', "\\-");
        assert!(
            page.contains(&format!(".SS \"vusb {name}")),
            "{name} missing"
        );
    }
    for s in [
        "\\-\\-force",
        "\\-\\-sysfs\\-root",
        "portpath=",
        "Exit status",
    ] {
        assert!(page.contains(s), "{s} missing");
    }
    if !have("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vusb.1");
    std::fs::write(&f, &page).unwrap();
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "groff warnings");
}
