//! What the server keeps on disk: for now its private data folder and the admin token file;
//! the database and per-plugin stores come with the storage issue.

pub mod data_dir;
