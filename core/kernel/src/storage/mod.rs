//! What the server keeps: its data folder and admin token, the database (embedded SQLite or
//! PostgreSQL) with core's and each plugin's migrations, the per-plugin key-value store, and
//! each plugin's own data folder. Archives of all of it are `plexichat-backup`'s.
//!
//! - `data_dir`: the private data folder and the admin token file.
//! - `database`: opening the pool for a URL.
//! - `migrate`: applying and reporting migrations.
//! - `kv`: the key-value store.
//! - `files`: a plugin's data folder.

pub mod data_dir;
pub mod database;
pub mod files;
pub mod kv;
pub mod migrate;

use std::path::{Path, PathBuf};

pub use database::{Database, DatabaseError, Engine};

/// The database and the data folder a runtime serves from; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    database: Database,
    data_dir: PathBuf,
}

impl Storage {
    /// `database`, with plugin folders under `data_dir/plugins/`.
    pub fn new(database: Database, data_dir: impl Into<PathBuf>) -> Storage {
        Storage {
            database,
            data_dir: data_dir.into(),
        }
    }

    /// Opens the database that `[data]` names (creating an embedded one) in `data.dir`.
    pub async fn open(data: &crate::config::DataSection) -> Result<Storage, DatabaseError> {
        let database = Database::open(&data.database_url()).await?;
        Ok(Storage::new(database, &data.dir))
    }

    /// A private in-memory database and a data folder that is never created unless a
    /// plugin writes a file; what a runtime built without storage uses.
    pub fn memory(data_dir: impl Into<PathBuf>) -> Storage {
        Storage::new(Database::memory(), data_dir)
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
