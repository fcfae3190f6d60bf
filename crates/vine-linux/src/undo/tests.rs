//! The journal's file rules, and undoing real changes: files, directories,
//! a sysctl-like file, and a veth pair in a private network namespace.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::fs;
use std::io::Write as _;

use super::*;
use crate::netns::in_netns;

fn link(name: &str) -> Change {
    Change::Link {
        name: name.to_owned(),
    }
}

#[test]
fn records_survive_a_new_process_and_revert_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/host-changes.jsonl");
    let mut j = Journal::open(&path).unwrap();
    assert!(j.changes().is_empty());
    j.record(link("vw-a")).unwrap();
    j.record(Change::File {
        path: "/x/y".into(),
    })
    .unwrap();
    j.record(link("vw-b")).unwrap();
    drop(j); // "kill -9": nothing reverted

    let mut again = Journal::open(&path).unwrap();
    assert_eq!(again.changes().len(), 3);
    let mut order = Vec::new();
    let report = again.revert(|c| {
        order.push(c.clone());
        Ok(Undone::Reverted)
    });
    assert_eq!(
        order,
        [
            link("vw-b"),
            Change::File {
                path: "/x/y".into()
            },
            link("vw-a")
        ]
    );
    assert_eq!(report.len(), 3);
    assert!(again.changes().is_empty());
    assert!(Journal::open(&path).unwrap().changes().is_empty());
    let mode = fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn a_failed_undo_stays_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut j = Journal::open(&path).unwrap();
    j.record(link("ok")).unwrap();
    j.record(link("stuck")).unwrap();
    let report = j.revert(|c| match c {
        Change::Link { name } if name == "stuck" => Err(io::Error::other("busy")),
        _ => Ok(Undone::Reverted),
    });
    assert!(
        report
            .iter()
            .any(|(c, r)| *c == link("stuck") && r.is_err())
    );
    assert_eq!(j.changes(), [link("stuck")]);
    assert_eq!(Journal::open(&path).unwrap().changes(), [link("stuck")]);
}

#[test]
fn forget_drops_what_was_undone_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut j = Journal::open(&path).unwrap();
    for n in ["a", "b", "c"] {
        j.record(link(n)).unwrap();
    }
    j.forget(|c| *c == link("b")).unwrap();
    assert_eq!(j.changes(), [link("a"), link("c")]);
    j.record(link("d")).unwrap(); // appends to the rewritten file
    assert_eq!(
        Journal::open(&path).unwrap().changes(),
        [link("a"), link("c"), link("d")]
    );
}

#[test]
fn a_torn_last_line_is_ignored_but_garbage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut j = Journal::open(&path).unwrap();
    j.record(link("a")).unwrap();
    drop(j);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"change":"link","na"#).unwrap();
    drop(f);
    assert_eq!(Journal::open(&path).unwrap().changes(), [link("a")]);

    fs::write(&path, "{\"change\":\"link\",\"name\":\"a\"}\nnot json\n").unwrap();
    let err = Journal::open(&path).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("by hand"), "{err}");
    fs::write(&path, "{\"change\":\"teleport\",\"name\":\"a\"}\n").unwrap();
    assert!(Journal::open(&path).is_err());
}

#[test]
fn a_symlinked_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let path = dir.path().join("j");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    assert!(Journal::open(&path).is_err());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn files_dirs_and_sysctls_are_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j")).unwrap();
    // A sysctl stand-in: the same read/compare/write rules as /proc/sys.
    let knob = dir.path().join("ip_forward");
    fs::write(&knob, "0\n").unwrap();
    let knob_s = knob.display().to_string();
    assert!(set_sysctl(&mut j, &knob_s, "1").unwrap());
    assert!(
        !set_sysctl(&mut j, &knob_s, "1").unwrap(),
        "no change, no record"
    );
    assert_eq!(fs::read_to_string(&knob).unwrap(), "1");
    let made = dir.path().join("netns-etc");
    j.record(Change::Dir {
        path: made.display().to_string(),
    })
    .unwrap();
    fs::create_dir(&made).unwrap();
    let file = made.join("resolv.conf");
    j.record(Change::File {
        path: file.display().to_string(),
    })
    .unwrap();
    fs::write(&file, "nameserver 10.42.1.1\n").unwrap();
    assert_eq!(j.changes().len(), 3);

    let report = j.revert(undo);
    assert!(
        report
            .iter()
            .all(|(_, r)| matches!(r, Ok(Undone::Reverted))),
        "{report:?}"
    );
    assert_eq!(fs::read_to_string(&knob).unwrap(), "0");
    assert!(!made.exists());
    // Undoing twice is harmless.
    for (c, _) in &report {
        assert!(
            matches!(undo(c), Ok(Undone::Absent | Undone::Kept(_))),
            "{c}"
        );
    }
}

#[test]
fn a_sysctl_someone_changed_since_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j")).unwrap();
    let knob = dir.path().join("knob");
    fs::write(&knob, "0").unwrap();
    set_sysctl(&mut j, &knob.display().to_string(), "1").unwrap();
    fs::write(&knob, "2").unwrap(); // the operator's own change
    let report = j.revert(undo);
    assert!(matches!(&report[0].1, Ok(Undone::Kept(why)) if why.contains("left as it is")));
    assert_eq!(fs::read_to_string(&knob).unwrap(), "2");
    // A directory that is not empty is kept, not emptied.
    let d = dir.path().join("d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("theirs"), "x").unwrap();
    assert!(matches!(
        undo(&Change::Dir {
            path: d.display().to_string()
        }),
        Ok(Undone::Kept(_))
    ));
    assert!(d.join("theirs").exists());
}

#[test]
fn a_created_veth_pair_is_deleted() {
    in_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j")).unwrap();
        let mut nl = Netlink::new().unwrap();
        j.record(link("vw-test0")).unwrap();
        nl.add_veth("vw-test0", "vw-test0p").unwrap();
        assert!(nl.link("vw-test0p").unwrap().is_some());
        let report = j.revert(undo);
        assert!(matches!(report[0].1, Ok(Undone::Reverted)), "{report:?}");
        assert!(nl.link("vw-test0").unwrap().is_none());
        assert!(
            nl.link("vw-test0p").unwrap().is_none(),
            "the peer goes with it"
        );
        assert_eq!(undo(&link("vw-test0")).unwrap(), Undone::Absent);
    });
}
