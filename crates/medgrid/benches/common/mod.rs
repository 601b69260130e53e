//! What the benchmarks share: their command-line flags, and a fresh database holding the
//! Jinhua layout and its staff.

use std::str::FromStr;

use medgrid_domain::org::layout::Layout;
use medgrid_store::{Actor, DbKind};
use medgrid_testkit::TestDb;

pub const JINHUA: &[u8] = include_bytes!("../../../../data/layouts/jinhua.csv");

/// The value after `--name`, if given; a value that does not parse stops the benchmark.
pub fn flag<T: FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot read '{value}'")),
    )
}

/// The databases to measure: `--db sqlite|postgres`, both by default.
#[allow(dead_code)] // the indicators benchmark reads files, not a database of facts
pub fn kinds() -> Vec<DbKind> {
    match flag::<String>("--db").as_deref() {
        None => vec![DbKind::Sqlite, DbKind::Postgres],
        Some("sqlite") => vec![DbKind::Sqlite],
        Some("postgres") => vec![DbKind::Postgres],
        Some(other) => panic!("--db sqlite|postgres, not '{other}'"),
    }
}

/// A fresh database with the layout imported (as city 1) and its staff registered.
pub async fn registered(kind: DbKind, layout: &Layout, seed: u64) -> TestDb {
    let db = TestDb::new(kind).await;
    let actor = Actor::system("bench");
    let city = db
        .store
        .import_layout(&actor, layout)
        .await
        .unwrap()
        .city_id;
    assert_eq!(city, 1);
    db.store
        .register_staff(&actor, city, layout, seed)
        .await
        .unwrap();
    db
}
