//! Storage on both engines: the key-value store's semantics, migrations (checksums, vanished
//! files, concurrent starts, the table-prefix rule), and a plugin's data folder. PostgreSQL
//! comes from `PLEXICHAT_TEST_POSTGRES` (`cargo xtask test` starts one); without it these
//! tests fail, saying so.

use std::time::Duration;

use plexichat::migration::Migration;
use plexichat::plugin::PluginDescriptor;
use plexichat::storage::kv::{KeyPage, KvStore};
use plexichat::testing::{fresh_dir, fresh_postgres_database};
use plexichat::{Registry, RegistryError};
use plexichat_kernel::storage::Database;
use plexichat_kernel::storage::database::DatabaseUrl;
use plexichat_kernel::storage::migrate::{self, MigrateError, MigrationState};

/// A fresh SQLite file and a fresh PostgreSQL database, each with core's tables.
async fn engines() -> Vec<Database> {
    let file = DatabaseUrl::sqlite_file(&fresh_dir("storage").join("plexichat.db"));
    let sqlite = Database::open(&file).await.expect("open SQLite");
    let postgres = fresh_postgres_database().await;
    for db in [&sqlite, &postgres] {
        migrate::migrate(db, &[]).await.expect("core migrations");
    }
    vec![sqlite, postgres]
}

#[tokio::test]
async fn the_key_value_store_behaves_the_same_on_both_engines() {
    for db in engines().await {
        let engine = db.engine();
        let kv = KvStore::new(db.clone(), "alpha");
        let other = KvStore::new(db.clone(), "beta");

        assert_eq!(kv.get("missing").await.unwrap(), None, "{engine}");
        kv.set("a", b"1").await.unwrap();
        assert_eq!(
            kv.get("a").await.unwrap().as_deref(),
            Some(&b"1"[..]),
            "{engine}"
        );
        // Namespaces do not see each other.
        assert_eq!(other.get("a").await.unwrap(), None, "{engine}");
        other.set("a", b"other").await.unwrap();
        assert_eq!(
            kv.get("a").await.unwrap().as_deref(),
            Some(&b"1"[..]),
            "{engine}"
        );

        // Compare-and-set: only from the expected value; `None` means "absent".
        assert!(
            !kv.compare_and_set("a", Some(b"2"), b"3", None)
                .await
                .unwrap(),
            "{engine}"
        );
        assert!(
            kv.compare_and_set("a", Some(b"1"), b"3", None)
                .await
                .unwrap(),
            "{engine}"
        );
        assert!(
            !kv.compare_and_set("a", None, b"4", None).await.unwrap(),
            "{engine}"
        );
        assert!(
            kv.compare_and_set("fresh", None, b"new", None)
                .await
                .unwrap(),
            "{engine}"
        );
        assert_eq!(
            kv.get("a").await.unwrap().as_deref(),
            Some(&b"3"[..]),
            "{engine}"
        );

        // Compare-and-delete.
        assert!(!kv.compare_and_delete("a", b"1").await.unwrap(), "{engine}");
        assert!(kv.compare_and_delete("a", b"3").await.unwrap(), "{engine}");
        assert_eq!(kv.get("a").await.unwrap(), None, "{engine}");
        assert!(kv.delete("fresh").await.unwrap(), "{engine}");
        assert!(!kv.delete("fresh").await.unwrap(), "{engine}");

        // Expiry: invisible at once, even before the sweep; an expired key counts as absent
        // for compare-and-set.
        kv.set_with_expiry("short", b"x", Duration::from_millis(50))
            .await
            .unwrap();
        assert!(kv.get("short").await.unwrap().is_some(), "{engine}");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(kv.get("short").await.unwrap(), None, "{engine}");
        assert_eq!(
            kv.list("sh", None, 10).await.unwrap().keys,
            Vec::<String>::new(),
            "{engine}"
        );
        assert!(
            kv.compare_and_set("short", None, b"y", None).await.unwrap(),
            "{engine}"
        );
        kv.set_with_expiry("gone", b"x", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            plexichat::storage::kv::remove_expired(&db).await.unwrap() >= 1,
            "{engine}"
        );

        // Listing by prefix, in byte order, a page at a time.
        for key in ["user:3", "user:1", "user:2", "users", "other", "user:10"] {
            kv.set(key, b"v").await.unwrap();
        }
        let first = kv.list("user:", None, 2).await.unwrap();
        assert_eq!(
            first,
            KeyPage {
                keys: vec!["user:1".into(), "user:10".into()],
                next: Some("user:10".into())
            },
            "{engine}"
        );
        let second = kv.list("user:", first.next.as_deref(), 2).await.unwrap();
        assert_eq!(second.keys, ["user:2", "user:3"], "{engine}");
        assert_eq!(second.next, None, "{engine}: the last page says so");
        let past_the_end = kv.list("user:", Some("user:3"), 2).await.unwrap();
        assert_eq!(
            past_the_end,
            KeyPage {
                keys: vec![],
                next: None
            },
            "{engine}"
        );

        // JSON helpers.
        kv.set_json("doc", &serde_json::json!({ "n": 1 }))
            .await
            .unwrap();
        let doc: serde_json::Value = kv.get_json("doc").await.unwrap().unwrap();
        assert_eq!(doc["n"], 1, "{engine}");
        assert!(kv.get_json::<u32>("doc").await.is_err(), "{engine}");

        // Keys are checked; delete_all empties only this namespace.
        assert!(kv.set("", b"x").await.is_err(), "{engine}");
        assert!(kv.set(&"k".repeat(151), b"x").await.is_err(), "{engine}");
        assert!(kv.delete_all().await.unwrap() >= 6, "{engine}");
        assert_eq!(
            kv.list("", None, 100).await.unwrap().keys,
            Vec::<String>::new(),
            "{engine}"
        );
        assert_eq!(
            other.get("a").await.unwrap().as_deref(),
            Some(&b"other"[..]),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn concurrent_compare_and_set_lets_exactly_one_writer_win() {
    for db in engines().await {
        let kv = KvStore::new(db.clone(), "race");
        kv.set("counter", b"0").await.unwrap();
        let attempts = (0..8).map(|n| {
            let kv = kv.clone();
            tokio::spawn(async move {
                // Each writer's own value, never the old one.
                kv.compare_and_set(
                    "counter",
                    Some(b"0"),
                    format!("writer {n}").as_bytes(),
                    None,
                )
                .await
                .unwrap()
            })
        });
        let mut winners = 0;
        for attempt in attempts {
            winners += usize::from(attempt.await.unwrap());
        }
        assert_eq!(winners, 1, "{}", db.engine());
    }
}

/// A plugin descriptor with `migrations`, for the runner.
fn plugin(name: &'static str, migrations: &'static [Migration]) -> &'static PluginDescriptor {
    let crate_name = Box::leak(format!("{name}_crate").into_boxed_str());
    let base = crate::registry::plugin(name, crate_name, &[]);
    Box::leak(Box::new(PluginDescriptor {
        migrations,
        ..*base
    }))
}

fn migration(version: u32, name: &'static str, sql: &'static str) -> Migration {
    Migration {
        version,
        name,
        sqlite: sql,
        sqlite_file: Box::leak(format!("migrations/{name}.sql").into_boxed_str()),
        postgres: sql,
        postgres_file: Box::leak(format!("migrations/{name}.sql").into_boxed_str()),
    }
}

fn leak(migrations: Vec<Migration>) -> &'static [Migration] {
    Box::leak(migrations.into_boxed_slice())
}

#[tokio::test]
async fn migrations_apply_once_and_a_changed_or_vanished_one_stops_the_run() {
    for db in engines().await {
        let engine = db.engine();
        let v1 = plugin(
            "notes",
            leak(vec![
                migration(
                    1,
                    "0001_create",
                    "CREATE TABLE notes_items (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
                ),
                migration(
                    2,
                    "0002_index",
                    "CREATE INDEX notes_items_body ON notes_items (body)",
                ),
            ]),
        );
        let report = migrate::migrate(&db, &[v1]).await.unwrap();
        assert_eq!(
            report.applied,
            [("notes", "0001_create"), ("notes", "0002_index")],
            "{engine}"
        );
        assert!(
            migrate::migrate(&db, &[v1])
                .await
                .unwrap()
                .applied
                .is_empty(),
            "{engine}"
        );
        let status = migrate::status(&db, &[v1]).await.unwrap();
        assert_eq!(status[1].count(MigrationState::Applied), 2, "{engine}");

        // The text of an applied migration changed: refused, naming plugin and file, and
        // nothing after it runs (0003 stays pending).
        let changed = plugin(
            "notes",
            leak(vec![
                migration(
                    1,
                    "0001_create",
                    "CREATE TABLE notes_items (id BIGINT PRIMARY KEY, body TEXT)",
                ),
                migration(
                    2,
                    "0002_index",
                    "CREATE INDEX notes_items_body ON notes_items (body)",
                ),
                migration(3, "0003_more", "CREATE TABLE notes_more (id BIGINT)"),
            ]),
        );
        let error = migrate::migrate(&db, &[changed]).await.unwrap_err();
        assert!(
            matches!(
                error,
                MigrateError::Changed {
                    plugin: "notes",
                    file: "migrations/0001_create.sql",
                    ..
                }
            ),
            "{engine}: {error}"
        );
        let status = migrate::status(&db, &[changed]).await.unwrap();
        let states: Vec<MigrationState> = status[1].migrations.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            [
                MigrationState::Changed,
                MigrationState::Applied,
                MigrationState::Pending
            ],
            "{engine}"
        );

        // An applied migration no longer compiled in.
        let vanished = plugin(
            "notes",
            leak(vec![migration(
                1,
                "0001_create",
                "CREATE TABLE notes_items (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
            )]),
        );
        let error = migrate::migrate(&db, &[vanished])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`0002_index` (version 2) of plugin `notes`"),
            "{engine}: {error}"
        );

        // A failing migration is rolled back whole and not recorded.
        let failing = plugin(
            "broken",
            leak(vec![migration(
                1,
                "0001_half",
                "CREATE TABLE broken_a (id BIGINT); INSERT INTO broken_missing VALUES (1);",
            )]),
        );
        let error = migrate::migrate(&db, &[failing]).await.unwrap_err();
        assert!(
            matches!(
                error,
                MigrateError::Failed {
                    plugin: "broken",
                    ..
                }
            ),
            "{engine}: {error}"
        );
        let exists = sqlx_count(
            &db,
            "SELECT COUNT(*) FROM plexichat_migrations WHERE plugin = 'broken'",
        )
        .await;
        assert_eq!(exists, 0, "{engine}");
        // The table from the failed migration's first statement is gone with the rollback.
        let fixed = plugin(
            "broken",
            leak(vec![migration(
                1,
                "0001_half",
                "CREATE TABLE broken_a (id BIGINT)",
            )]),
        );
        migrate::migrate(&db, &[fixed]).await.unwrap();
    }
}

async fn sqlx_count(db: &Database, sql: &'static str) -> i64 {
    use plexichat::sqlx::Row;
    plexichat::sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test]
async fn replicas_starting_at_once_apply_each_migration_exactly_once() {
    let postgres = fresh_postgres_database().await;
    let file = DatabaseUrl::sqlite_file(&fresh_dir("replicas").join("plexichat.db"));
    let sqlite = Database::open(&file).await.unwrap();
    let plugins: Vec<&'static PluginDescriptor> = (0..3)
        .map(|n| {
            let name: &'static str = Box::leak(format!("replica{n}").into_boxed_str());
            let table: &'static str = Box::leak(
                format!("CREATE TABLE {name}_t (id BIGINT); INSERT INTO {name}_t VALUES (1);")
                    .into_boxed_str(),
            );
            plugin(name, leak(vec![migration(1, "0001_t", table)]))
        })
        .collect();
    for db in [postgres, sqlite] {
        // Each "replica" has its own pool on the same database, as separate processes would.
        let url = db.url().clone();
        let runs = (0..4).map(|_| {
            let (url, plugins) = (url.clone(), plugins.clone());
            tokio::spawn(async move {
                let db = Database::open(&url).await.unwrap();
                migrate::migrate(&db, &plugins)
                    .await
                    .map(|report| report.applied.len())
            })
        });
        let mut applied = 0;
        for run in runs {
            applied += run
                .await
                .unwrap()
                .unwrap_or_else(|error| panic!("{}: {error}", url));
        }
        // Core's migrations and one per plugin, each applied by exactly one replica.
        assert_eq!(
            applied,
            migrate::CORE_MIGRATIONS.len() + 3,
            "{}",
            db.engine()
        );
        for n in 0..3 {
            let sql: &'static str =
                Box::leak(format!("SELECT COUNT(*) FROM replica{n}_t").into_boxed_str());
            assert_eq!(sqlx_count(&db, sql).await, 1, "{}", db.engine());
        }
    }
}

#[test]
fn a_migration_outside_its_plugin_prefix_is_a_registry_error_naming_the_statement() {
    let outside = plugin(
        "shop",
        leak(vec![migration(
            1,
            "0001_init",
            "CREATE TABLE shop_orders (id BIGINT);\nALTER TABLE users ADD COLUMN shop_points BIGINT;",
        )]),
    );
    let greedy = plugin("shop_extra", leak(vec![]));
    let core = plugin(
        "sneaky",
        leak(vec![migration(1, "0001_x", "DROP TABLE plexichat_kv")]),
    );
    let errors = Registry::from_parts(vec![outside, greedy, core], vec![], vec![]).unwrap_err();
    let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(
        messages.contains(
            &"migration `migrations/0001_init.sql` of plugin `shop` touches `users`, which does not start with the plugin's prefix `shop_`: `ALTER TABLE users ADD COLUMN shop_points BIGINT`".to_string()
        ),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("plugin `sneaky` touches `plexichat_kv`")),
        "{messages:#?}"
    );
    assert!(
        errors
            .0
            .iter()
            .all(|e| matches!(e, RegistryError::MigrationOutsidePrefix { .. }))
    );

    let into_other = plugin(
        "shop",
        leak(vec![migration(
            1,
            "0001_x",
            "CREATE TABLE shop_extra_log (id BIGINT)",
        )]),
    );
    let errors = Registry::from_parts(vec![into_other, greedy], vec![], vec![]).unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("which is in plugin `shop_extra`'s prefix `shop_extra_`"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_plugin_reads_and_writes_only_inside_its_data_folder() {
    let app = plexichat::testing::TestApp::linked().await;
    let (status, body) = app
        .request("PUT", "/test/files/notes/today.txt")
        .body(plexichat::testing::TestBody::raw(
            Some("text/plain"),
            "hello",
        ))
        .send()
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["written"], serde_json::json!(["notes"]));
    let (status, body) = app.get("/test/files/notes/today.txt").await;
    assert_eq!((status.as_u16(), body), (200, serde_json::json!("hello")));
    let dir = app
        .runtime
        .current_config()
        .data
        .dir
        .join("plugins/test_harness/notes/today.txt");
    assert_eq!(std::fs::read_to_string(dir).unwrap(), "hello");
    // `..` (percent-encoded, so that it reaches the handler) is refused before any I/O.
    let (status, body) = app
        .request("PUT", "/test/files/notes/%2E%2E/%2E%2E/escape.txt")
        .body(plexichat::testing::TestBody::raw(Some("text/plain"), "x"))
        .send()
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("outside the plugin's data folder"),
        "{body}"
    );
}

#[tokio::test]
async fn plugin_descriptions_show_permissions_migrations_and_tables() {
    let app = plexichat::testing::TestApp::linked().await;
    let (status, audit) = app.get("/api/v1/plugins/awesome_audit").await;
    assert_eq!(status, 200);
    assert_eq!(audit["permissions"], serde_json::json!(["database"]));
    assert_eq!(audit["grants"][0]["permission"], "database");
    assert!(
        audit["grants"][0]["grants"]
            .as_str()
            .unwrap()
            .contains("SQL"),
        "{audit}"
    );
    assert_eq!(audit["tables"], serde_json::json!(["awesome_audit_events"]));
    assert_eq!(audit["migrations"][0]["name"], "0001_create_events");
    assert_eq!(
        audit["migrations"][0]["postgres_file"],
        "migrations/postgres/0001_create_events.sql"
    );
    let (_, awesome) = app.get("/api/v1/plugins/my_awesome_plugin").await;
    assert_eq!(awesome["tables"], serde_json::json!([]));
    assert_eq!(awesome["grants"].as_array().unwrap().len(), 3);
    assert_eq!(awesome["backup_handlers"], false, "{awesome}");
    let (_, harness) = app.get("/api/v1/plugins/test_harness").await;
    assert_eq!(harness["backup_handlers"], true, "{harness}");
}

#[tokio::test]
async fn a_restore_that_fails_halfway_leaves_the_data_as_it_was() {
    use plexichat_backup as backup;
    let dir = fresh_dir("restore-failure");
    let data = plexichat_kernel::config::DataSection {
        dir: dir.clone(),
        database: None,
    };
    let registry =
        Registry::from_parts(vec![plugin("notes", leak(vec![]))], vec![], vec![]).unwrap();
    let folder = dir.join("plugins/notes");
    let storage = plexichat_kernel::storage::Storage::open(&data)
        .await
        .unwrap();
    migrate::migrate(storage.database(), &[]).await.unwrap();
    let kv = KvStore::new(storage.database().clone(), "notes");
    kv.set("greeting", b"before the backup").await.unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("a.txt"), "first").unwrap();
    let archive = dir.join("backup.tar");
    backup::create(&runtime_over(&registry, &storage), &archive)
        .await
        .unwrap();

    // Changed after the backup: what a failed restore must leave alone.
    kv.set("greeting", b"after the backup").await.unwrap();
    std::fs::write(folder.join("a.txt"), "second").unwrap();
    storage.database().close().await;
    let registry_for_restore = registry;
    let failed = backup::restore_with(
        &archive,
        &registry_for_restore,
        &config_on(&registry_for_restore, &data),
        backup::RestoreOptions {
            fail_after_entries: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(failed, backup::BackupError::Failed(_)), "{failed}");
    assert!(failed.to_string().contains("injected failure"), "{failed}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("restore"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing built aside is left: {leftovers:?}"
    );
    let reopened = plexichat_kernel::storage::Storage::open(&data)
        .await
        .unwrap();
    let kv = KvStore::new(reopened.database().clone(), "notes");
    assert_eq!(
        kv.get("greeting").await.unwrap().unwrap(),
        b"after the backup"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("a.txt")).unwrap(),
        "second"
    );
    reopened.database().close().await;

    // The same restore without the failure brings the backup's state back.
    let report = backup::restore(
        &archive,
        &registry_for_restore,
        &config_on(&registry_for_restore, &data),
    )
    .await
    .unwrap();
    let reopened = plexichat_kernel::storage::Storage::open(&data)
        .await
        .unwrap();
    let kv = KvStore::new(reopened.database().clone(), "notes");
    assert_eq!(
        kv.get("greeting").await.unwrap().unwrap(),
        b"before the backup"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("a.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read_to_string(report.previous.join("plugins/notes/a.txt")).unwrap(),
        "second",
        "the replaced data is kept"
    );
}

/// A plugin whose table has a column of every portable type, in each engine's dialect.
fn ledger() -> &'static PluginDescriptor {
    plugin(
        "ledger",
        leak(vec![Migration {
            version: 1,
            name: "0001_entries",
            sqlite: "CREATE TABLE ledger_entries (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, body BLOB, done BOOLEAN NOT NULL, amount DOUBLE PRECISION, note TEXT, price NUMERIC, reference TEXT);
CREATE INDEX ledger_entries_title ON ledger_entries (title);
CREATE TABLE ledger_tags (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES ledger_tags (id), name TEXT NOT NULL);
CREATE TABLE ledger_empty (id BIGINT PRIMARY KEY, name TEXT);",
            sqlite_file: "migrations/sqlite/0001_entries.sql",
            postgres: "CREATE TABLE ledger_entries (id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL, body BYTEA, done BOOLEAN NOT NULL, amount DOUBLE PRECISION, note TEXT, price NUMERIC, reference UUID);
CREATE INDEX ledger_entries_title ON ledger_entries (title);
CREATE TABLE ledger_tags (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES ledger_tags (id) DEFERRABLE, name TEXT NOT NULL);
CREATE TABLE ledger_empty (id BIGINT PRIMARY KEY, name TEXT);",
            postgres_file: "migrations/postgres/0001_entries.sql",
        }]),
    )
}

/// Every row of the ledger, in a form both engines print the same.
async fn ledger_rows(db: &Database) -> Vec<String> {
    use plexichat::sqlx::Row;
    let tags = plexichat::sqlx::query("SELECT id, parent, name FROM ledger_tags ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let tags = tags.iter().map(|row| {
        format!(
            "tag {:?}",
            (
                row.get::<i64, _>(0),
                row.get::<Option<i64>, _>(1),
                row.get::<String, _>(2)
            )
        )
    });
    let rows = plexichat::sqlx::query(
        "SELECT id, title, body, CAST(CASE WHEN done THEN 1 ELSE 0 END AS BIGINT), amount, note, CAST(price AS DOUBLE PRECISION), CAST(reference AS TEXT) FROM ledger_entries ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            format!(
                "entry {:?}",
                (
                    row.get::<i64, _>(0),
                    row.get::<String, _>(1),
                    row.get::<Option<Vec<u8>>, _>(2),
                    row.get::<i64, _>(3),
                    row.get::<Option<f64>, _>(4),
                    row.get::<Option<String>, _>(5),
                    row.get::<Option<f64>, _>(6),
                    row.get::<Option<String>, _>(7),
                )
            )
        })
        .chain(tags)
        .collect()
}

/// The key-value pairs of `plugin`, values included.
async fn kv_pairs(db: &Database, plugin: &'static str) -> Vec<(String, Vec<u8>)> {
    let kv = KvStore::new(db.clone(), plugin);
    let mut pairs = Vec::new();
    for key in kv.list("", None, 100).await.unwrap().keys {
        let value = kv.get(&key).await.unwrap().unwrap();
        pairs.push((key, value));
    }
    pairs
}

#[tokio::test]
async fn a_backup_moves_from_sqlite_into_postgresql_and_back_with_every_row_intact() {
    use plexichat_backup::{self as backup, BackupError, RestoreOptions};
    use plexichat_kernel::config::DataSection;
    use plexichat_kernel::storage::Storage;
    use plexichat_kernel::storage::database::Engine;

    let registry = Registry::from_parts(vec![ledger()], vec![], vec![]).unwrap();
    let plugins = registry.plugins().to_vec();

    // A SQLite server's data: awkward values on purpose.
    let sqlite_dir = fresh_dir("cross-sqlite");
    let sqlite_data = DataSection {
        dir: sqlite_dir.clone(),
        database: None,
    };
    let storage = Storage::open(&sqlite_data).await.unwrap();
    migrate::migrate(storage.database(), &plugins)
        .await
        .unwrap();
    for (title, body, done, amount, note) in [
        (
            "plain",
            Some(b"bytes \x00\xff".to_vec()),
            true,
            Some(1.5),
            Some("a note"),
        ),
        (
            "unicode \u{1F600} 'quoted' \"double\"",
            None,
            false,
            None,
            None,
        ),
        ("extremes", Some(Vec::new()), true, Some(-1.0e300), Some("")),
        ("infinite", None, false, Some(f64::INFINITY), None),
        ("precise", None, false, Some(0.1 + 0.2), None),
    ] {
        // PostgreSQL's `numeric` and `uuid`, which travel as text: one finite and one
        // infinite price, and a reference on the first row.
        let (price, reference) = match title {
            "plain" => (Some(12.5), Some("6f9619ff-8b86-c011-b42d-00cf4fc964ff")),
            "infinite" => (Some(f64::INFINITY), None),
            _ => (None, None),
        };
        plexichat::sqlx::query(
            "INSERT INTO ledger_entries (title, body, done, amount, note, price, reference) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(title)
        .bind(body)
        .bind(done)
        .bind(amount)
        .bind(note)
        .bind(price)
        .bind(reference)
        .execute(storage.database().pool())
        .await
        .unwrap();
    }
    // A gap in the identifiers, which the restored sequence must step over.
    plexichat::sqlx::query(
        "INSERT INTO ledger_entries (id, title, done) VALUES (9000000000, 'far', TRUE)",
    )
    .execute(storage.database().pool())
    .await
    .unwrap();
    // A child stored before its parent, which a restore reads first.
    for sql in [
        "INSERT INTO ledger_tags (id, parent, name) VALUES (1, NULL, 'child'), (2, NULL, 'parent')",
        "UPDATE ledger_tags SET parent = 2 WHERE id = 1",
    ] {
        plexichat::sqlx::query(sql)
            .execute(storage.database().pool())
            .await
            .unwrap();
    }
    let kv = KvStore::new(storage.database().clone(), "ledger");
    kv.set("binary", &[0, 1, 254, 255]).await.unwrap();
    kv.set_with_expiry("later", b"expires tomorrow", Duration::from_secs(86_400))
        .await
        .unwrap();
    let folder = sqlite_dir.join("plugins/ledger");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "from SQLite").unwrap();
    let expected = ledger_rows(storage.database()).await;
    let expected_kv = kv_pairs(storage.database(), "ledger").await;
    assert_eq!(expected.len(), 8);
    assert_eq!(expected_kv.len(), 2);
    let sqlite_archive = sqlite_dir.join("from-sqlite.tar");
    backup::create(&runtime_over(&registry, &storage), &sqlite_archive)
        .await
        .unwrap();
    storage.database().close().await;

    // A PostgreSQL database that already holds PlexiChat data, with a server connected.
    let postgres = fresh_postgres_database().await;
    migrate::migrate(&postgres, &plugins).await.unwrap();
    plexichat::sqlx::query("INSERT INTO ledger_entries (title, done) VALUES ('replaced', TRUE)")
        .execute(postgres.pool())
        .await
        .unwrap();
    let postgres_dir = fresh_dir("cross-postgres");
    let postgres_data = DataSection {
        dir: postgres_dir.clone(),
        database: Some(postgres.url().clone()),
    };
    let refused = backup::restore(
        &sqlite_archive,
        &registry,
        &config_on(&registry, &postgres_data),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, BackupError::DatabaseInUse { sessions, .. } if sessions >= 1),
        "{refused}"
    );
    postgres.close().await;

    // A failure after every row went in, before the commit: nothing changed.
    let failed = backup::restore_with(
        &sqlite_archive,
        &registry,
        &config_on(&registry, &postgres_data),
        RestoreOptions {
            fail_before_commit: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(failed.to_string().contains("injected failure"), "{failed}");
    let reopened = Database::open(postgres_data.database.as_ref().unwrap())
        .await
        .unwrap();
    let untouched = ledger_rows(&reopened).await;
    assert_eq!(untouched.len(), 1, "{untouched:?}");
    assert!(untouched[0].contains("replaced"), "{untouched:?}");
    reopened.close().await;

    let report = backup::restore(
        &sqlite_archive,
        &registry,
        &config_on(&registry, &postgres_data),
    )
    .await
    .unwrap();
    let loaded = report.loaded.unwrap();
    // Five tables (the key-value store, the empty outbox, entries, tags and the empty one),
    // ten rows.
    assert_eq!((loaded.tables, loaded.rows), (5, 10), "{loaded:?}");
    let restored = Database::open(postgres_data.database.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(ledger_rows(&restored).await, expected);
    assert_eq!(kv_pairs(&restored, "ledger").await, expected_kv);
    assert_eq!(
        std::fs::read_to_string(postgres_dir.join("plugins/ledger/notes.txt")).unwrap(),
        "from SQLite"
    );
    // The replaced rows are kept in their own schema.
    let schema = report
        .previous_schema
        .expect("the replaced tables were moved");
    let kept: Vec<String> = plexichat::sqlx::query_scalar(plexichat::sqlx::AssertSqlSafe(format!(
        "SELECT title FROM \"{schema}\".ledger_entries"
    )))
    .fetch_all(restored.pool())
    .await
    .unwrap();
    assert_eq!(kept, ["replaced"]);
    // The next start has nothing to apply and finds nothing changed; new rows are numbered
    // past the restored ones.
    let next = migrate::migrate(&restored, &plugins).await.unwrap();
    assert!(next.applied.is_empty(), "{:?}", next.applied);
    let id: i64 = plexichat::sqlx::query_scalar(
        "INSERT INTO ledger_entries (title, done) VALUES ('after', FALSE) RETURNING id",
    )
    .fetch_one(restored.pool())
    .await
    .unwrap();
    assert_eq!(id, 9_000_000_001);
    let expected_back = ledger_rows(&restored).await;

    // PostgreSQL's export, back into a fresh SQLite data directory.
    let postgres_archive = postgres_dir.join("from-postgres.tar");
    let manifest = backup::create(
        &runtime_over(&registry, &Storage::new(restored.clone(), &postgres_dir)),
        &postgres_archive,
    )
    .await
    .unwrap();
    assert_eq!(manifest.engine, Engine::Postgres);
    restored.close().await;
    let back_dir = fresh_dir("cross-back");
    let back_data = DataSection {
        dir: back_dir.clone(),
        database: None,
    };
    let report = backup::restore(
        &postgres_archive,
        &registry,
        &config_on(&registry, &back_data),
    )
    .await
    .unwrap();
    assert_eq!(
        report.loaded.unwrap(),
        backup::Loaded {
            tables: 5,
            rows: 11
        }
    );
    let back = Storage::open(&back_data).await.unwrap();
    assert_eq!(ledger_rows(back.database()).await, expected_back);
    assert_eq!(kv_pairs(back.database(), "ledger").await, expected_kv);
    assert_eq!(
        std::fs::read_to_string(back_dir.join("plugins/ledger/notes.txt")).unwrap(),
        "from SQLite"
    );
    let next = migrate::migrate(back.database(), &plugins).await.unwrap();
    assert!(next.applied.is_empty(), "{:?}", next.applied);
    let id: i64 = plexichat::sqlx::query_scalar(
        "INSERT INTO ledger_entries (title, done) VALUES ('after', FALSE) RETURNING id",
    )
    .fetch_one(back.database().pool())
    .await
    .unwrap();
    assert_eq!(id, 9_000_000_002);
    back.database().close().await;
}

/// `registry`'s default configuration on `data`: what a restore runs plugins' handlers with.
fn config_on(
    registry: &Registry,
    data: &plexichat_kernel::config::DataSection,
) -> plexichat_kernel::config::Config {
    let mut config = plexichat_kernel::config::Config::defaults(registry);
    config.data = data.clone();
    config
}

/// A runtime of `registry` serving `storage`: what a backup is taken from.
fn runtime_over(
    registry: &Registry,
    storage: &plexichat_kernel::storage::Storage,
) -> plexichat_kernel::runtime::Runtime {
    let mut config = plexichat_kernel::config::Config::defaults(registry);
    config.data.dir = storage.data_dir().to_path_buf();
    plexichat_kernel::runtime::Runtime::with_storage(
        registry.clone(),
        config,
        None,
        storage.clone(),
    )
}

/// A server's runtime of every linked plugin on `data`, migrated, with `entry` in the test
/// harness's log (state outside the database, which only its backup handler archives).
async fn harness_server(
    registry: &Registry,
    data: &plexichat_kernel::config::DataSection,
    entry: &str,
) -> (
    plexichat_kernel::runtime::Runtime,
    plexichat_kernel::storage::Storage,
) {
    let storage = plexichat_kernel::storage::Storage::open(data)
        .await
        .unwrap();
    let runtime = plexichat_kernel::runtime::Runtime::with_storage(
        registry.clone(),
        config_on(registry, data),
        None,
        storage.clone(),
    );
    runtime.migrate().await.unwrap();
    runtime
        .plugin::<crate::Harness>()
        .unwrap()
        .record(entry.to_string());
    (runtime, storage)
}

/// What the harness's import handler stored on the data directory's database.
async fn restored_log(data: &plexichat_kernel::config::DataSection) -> Option<String> {
    let storage = plexichat_kernel::storage::Storage::open(data)
        .await
        .unwrap();
    let kv = KvStore::new(storage.database().clone(), "test_harness");
    let value = kv.get("restored_log").await.unwrap();
    storage.database().close().await;
    value.map(|bytes| String::from_utf8(bytes).unwrap())
}

#[tokio::test]
async fn plugins_backup_handlers_export_into_the_archive_and_import_on_restore() {
    use plexichat_backup::{self as backup, BackupError};
    let registry = Registry::linked().unwrap();
    let postgres = fresh_postgres_database().await;
    let postgres_url = postgres.url().clone();
    postgres.close().await;
    for database in [None, Some(postgres_url)] {
        let engine = if database.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let dir = fresh_dir(&format!("handlers-{engine}"));
        let data = plexichat_kernel::config::DataSection {
            dir: dir.clone(),
            database,
        };

        // Export: the handler's bytes are an archive entry of their own, checksummed.
        let (server, storage) = harness_server(&registry, &data, "kept outside the database").await;
        let archive = dir.join("good.tar");
        let manifest = backup::create(&server, &archive).await.unwrap();
        let entry = manifest
            .entries
            .iter()
            .find(|e| e.path == "handlers/test_harness.bin")
            .unwrap_or_else(|| panic!("{engine}: no handler entry in {:?}", manifest.entries));
        assert_eq!(entry.size, "kept outside the database".len() as u64);

        // A failing export fails the backup, naming the plugin, and leaves no file.
        server
            .plugin::<crate::Harness>()
            .unwrap()
            .record("fail export");
        let refused = dir.join("refused.tar");
        let error = backup::create(&server, &refused).await.unwrap_err();
        assert!(matches!(error, BackupError::PluginHandler(_)), "{error}");
        assert!(
            error.to_string().contains("plugin `test_harness`'s backup handler failed to export: the log asked the export to fail"),
            "{error}"
        );
        assert!(!refused.exists());
        assert!(
            !std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("refused")),
            "no partial or scratch file is left"
        );

        // An archive whose import will fail.
        storage.database().close().await;
        let (failing_server, storage) = harness_server(&registry, &data, "fail import").await;
        let failing = dir.join("failing.tar");
        backup::create(&failing_server, &failing).await.unwrap();
        storage.database().close().await;

        // Import: runs on the restored data, before any server starts.
        let config = config_on(&registry, &data);
        backup::restore(&archive, &registry, &config).await.unwrap();
        assert_eq!(
            restored_log(&data).await.as_deref(),
            Some("kept outside the database"),
            "{engine}"
        );

        let error = backup::restore(&failing, &registry, &config)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("plugin `test_harness`'s backup handler failed to import: the log asked the import to fail"),
            "{engine}: {error}"
        );
        if engine == "sqlite" {
            // Checked before the swap: the data is what the good restore left.
            assert!(matches!(error, BackupError::Failed(_)), "{error}");
            assert_eq!(
                restored_log(&data).await.as_deref(),
                Some("kept outside the database")
            );
        } else {
            // After the tables were committed: the operator hears the restore is incomplete.
            assert!(matches!(error, BackupError::Incomplete(_)), "{error}");
        }

        // A binary whose `test_harness` has no handler cannot take the archive back.
        let without = Registry::from_parts(
            vec![crate::registry::plugin(
                "test_harness",
                "test_harness_crate",
                &[],
            )],
            vec![],
            vec![],
        )
        .unwrap();
        let error = backup::verify(&archive, &without).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`test_harness` has no backup handler"),
            "{error}"
        );
    }
}
