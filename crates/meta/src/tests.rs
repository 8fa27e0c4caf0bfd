use super::*;

const V1: &str = "CREATE TABLE things(name TEXT PRIMARY KEY);";
const V2: &str = "ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0;";
const V3: &str = "CREATE TABLE marks(n INTEGER); INSERT INTO marks VALUES (3);";

fn things(migrations: &'static [&'static str]) -> Component {
    Component {
        name: "things",
        migrations,
    }
}

fn version(db: &Db) -> Option<i64> {
    db.read(|c| schema::version(c, "things")).unwrap()
}

#[test]
fn a_component_gets_each_missing_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.migrate(&things(&[V1])).unwrap();
    assert_eq!(version(&db), Some(1));
    db.conn()
        .execute("INSERT INTO things(name) VALUES ('a')", [])
        .unwrap();
    drop(db);

    // Reopened by a newer strata: 2 and 3 run, on the rows already there.
    let db = Db::open(dir.path()).unwrap();
    db.migrate(&things(&[V1, V2, V3])).unwrap();
    assert_eq!(version(&db), Some(3));
    let size: i64 = db
        .conn()
        .query_row("SELECT size FROM things WHERE name = 'a'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(size, 0);
    // Again: nothing runs twice (V3's insert would add a second row).
    db.migrate(&things(&[V1, V2, V3])).unwrap();
    let marks: i64 = db
        .conn()
        .query_row("SELECT count(*) FROM marks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marks, 1);
}

#[test]
fn a_failing_migration_leaves_the_version_and_tables_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.migrate(&things(&[V1])).unwrap();
    let broken = things(&[V1, V2, "CREATE TABLE marks(n INTEGER); NOT SQL;"]);
    db.migrate(&broken).unwrap_err();
    assert_eq!(version(&db), Some(1));
    // V2 ran inside the failed transaction: rolled back with it.
    let cols: i64 = db
        .conn()
        .query_row(
            "SELECT count(*) FROM pragma_table_info('things') WHERE name = 'size'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cols, 0);
    db.migrate(&things(&[V1, V2, V3])).unwrap();
    assert_eq!(version(&db), Some(3));
}

#[test]
fn a_newer_version_than_known_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.migrate(&things(&[V1, V2])).unwrap();
    let e = db.migrate(&things(&[V1])).unwrap_err();
    assert_eq!(e.kind(), Kind::Corrupt);
    let text = e.to_string();
    assert!(
        text.contains("things tables are at schema version 2, this strata knows 1"),
        "{text}"
    );
    assert_eq!(version(&db), Some(2));
}

#[test]
fn a_new_database_is_in_wal_mode_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let conn = db.conn();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
}

#[test]
fn hooks_run_after_the_commit_and_not_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.migrate(&things(&[V1])).unwrap();
    let log = std::cell::RefCell::new(Vec::new());
    db.write(|tx| {
        tx.execute("INSERT INTO things(name) VALUES ('a')", [])?;
        tx.on_commit(|| log.borrow_mut().push("on_commit"));
        tx.after_unlock(|| log.borrow_mut().push("after_unlock"));
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["on_commit", "after_unlock"]);
    log.borrow_mut().clear();
    let r: Result<()> = db.write(|tx| {
        tx.execute("INSERT INTO things(name) VALUES ('b')", [])?;
        tx.on_commit(|| log.borrow_mut().push("on_commit"));
        Err(Error::Corrupt("no".into()))
    });
    r.unwrap_err();
    assert!(log.borrow().is_empty());
    let n: i64 = db
        .conn()
        .query_row("SELECT count(*) FROM things", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the failed transaction rolled back");
    // A volatile commit restores FULL for the next one.
    db.write_volatile(|tx| {
        tx.execute("INSERT INTO things(name) VALUES ('c')", [])
            .map_err(Error::from)
    })
    .unwrap();
    let sync: i64 = db
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2);
}
