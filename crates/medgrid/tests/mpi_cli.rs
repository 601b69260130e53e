//! `medgrid mpi match` as scripts run it: files in, pairs out, a one-line reason on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::process::Command;

fn medgrid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medgrid"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn two_files_are_linked_and_bad_kinds_are_named() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpi-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    let given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"];
    let mut a = String::from("id,name,dob,phone\n");
    let mut b = String::from("rid,phone,dob,name\n");
    for (i, s) in surnames.iter().enumerate() {
        for (j, g) in given.iter().enumerate() {
            let name = format!("{s}{g}");
            let dob = format!("19{:02}-{:02}-{:02}", 40 + i * 5, 1 + j, 3 + i);
            let phone = format!("139{:04}{:04}", i * 101, j * 103);
            a.push_str(&format!("a{i}{j},{name},{dob},{phone}\n"));
            // The second unit registered every other person, one name by a homophone.
            if (i + j) % 2 == 0 {
                let typed = if i == 0 && j == 0 {
                    "王玮".to_owned()
                } else {
                    name
                };
                b.push_str(&format!("b{i}{j},{phone},{dob},{typed}\n"));
            }
        }
    }
    std::fs::write(dir.join("a.csv"), a).unwrap();
    std::fs::write(dir.join("b.csv"), b).unwrap();
    let out = dir.join("pairs.csv");
    let args = |kind: &'static str| {
        vec![
            "mpi".to_owned(),
            "match".into(),
            "--input".into(),
            dir.join("a.csv").display().to_string(),
            "--input".into(),
            dir.join("b.csv").display().to_string(),
            "--id-column".into(),
            "id".into(),
            "--field".into(),
            format!("name={kind}"),
            "--field".into(),
            "dob=birth_date".into(),
            "--field".into(),
            "phone=phone".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    // The id column must exist in both files: the second names it rid.
    let run = medgrid(&args("name").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("no column \"id\""), "{err}");
    std::fs::write(
        dir.join("b.csv"),
        std::fs::read_to_string(dir.join("b.csv"))
            .unwrap()
            .replacen("rid,", "id,", 1),
    )
    .unwrap();
    let run = medgrid(&args("name").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("left_id,right_id,probability"));
    let pairs: Vec<(String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[1].to_owned())
        })
        .collect();
    assert_eq!(pairs.len(), 50, "every registered person once: {pairs:?}");
    for (l, r) in &pairs {
        assert!(l.starts_with('a') && r.starts_with('b'), "left from A");
        assert_eq!(l[1..], r[1..], "the same person");
    }
    let bad = medgrid(
        &args("nickname")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown kind") && err.lines().count() == 1,
        "{err}"
    );
}
