//! The server's data folder and the admin token file in it: the folder is created private
//! (mode 0700), and an existing token file is trusted only if it is a private regular file
//! of the server's own user, since anyone who can read or replace it owns the admin API.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::config::secret::Secret;

/// The file, inside the data directory, that holds a generated admin token.
pub const TOKEN_FILE: &str = "admin_token";

/// Why the data folder or the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The file exists but is not safe to trust.
    #[error("refusing to use {path}: {problem}")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Reading, writing or creating failed.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist, and refuses an
/// existing one that others may write to: whoever can write the data folder can replace the
/// database, the token file or a plugin's files.
pub fn create(dir: &Path) -> Result<(), DataDirError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| DataDirError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|source| DataDirError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o002 != 0 {
            return Err(DataDirError::Unsafe {
                path: dir.to_path_buf(),
                problem: format!(
                    "its mode {:04o} lets anyone write to it (and so replace the database or \
                     the admin token); run `chmod 700` on it",
                    mode & 0o7777
                ),
            });
        }
    }
    Ok(())
}

/// The admin token in `dir/admin_token`, generated (32 random bytes, hex) and written with
/// mode 0600 if the file does not exist yet. Returns the token, the file, and whether it was
/// created now.
///
/// An existing file is refused unless it is a regular file (not a symbolic link) owned by
/// this process's user and neither readable nor writable by group or others.
pub fn ensure_token(dir: &Path) -> Result<(Secret, PathBuf, bool), DataDirError> {
    match token(dir, true)? {
        (Some(token), path, created) => Ok((token, path, created)),
        // With `create`, a missing file is written; never an empty token.
        (None, path, _) => Err(DataDirError::Io {
            path,
            source: std::io::ErrorKind::NotFound.into(),
        }),
    }
}

/// The admin token in `dir/admin_token`, if the file exists, with the same checks as
/// [`ensure_token`]; nothing is created. What a command uses to authenticate as the admin.
pub fn read_token(dir: &Path) -> Result<(Option<Secret>, PathBuf), DataDirError> {
    token(dir, false).map(|(token, path, _)| (token, path))
}

fn token(dir: &Path, create: bool) -> Result<(Option<Secret>, PathBuf, bool), DataDirError> {
    let path = dir.join(TOKEN_FILE);
    let io = |source| DataDirError::Io {
        path: path.clone(),
        source,
    };
    let unsafe_file = |problem: String| DataDirError::Unsafe {
        path: path.clone(),
        problem,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening with O_NOFOLLOW checks "not a symlink" on the file actually opened, with no
    // window between a check and the open; O_NONBLOCK keeps a FIFO in its place from
    // hanging start-up before the "regular file" check.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    match options.open(&path) {
        Ok(file) => {
            let metadata = file.metadata().map_err(io)?;
            if let Some(problem) = untrusted(&metadata) {
                return Err(unsafe_file(problem));
            }
            let mut text = String::new();
            file.take(64 * 1024).read_to_string(&mut text).map_err(io)?;
            let token = text.trim();
            if token.is_empty() {
                return Err(unsafe_file(
                    "the file is empty; delete it to have a new token generated".to_string(),
                ));
            }
            Ok((Some(Secret::new(token)), path, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !create => {
            Ok((None, path, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|error| io(std::io::Error::other(error.to_string())))?;
            let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(io)?;
            file.write_all(token.as_bytes()).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            Ok((Some(Secret::new(token)), path, true))
        }
        #[cfg(unix)]
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => Err(unsafe_file(
            "it is a symbolic link; the token file must be a regular file (delete the link to \
             have a new token generated)"
                .to_string(),
        )),
        Err(error) => Err(io(error)),
    }
}

/// Why a token file must not be trusted, or `None`.
#[cfg(unix)]
fn untrusted(metadata: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !metadata.is_file() {
        return Some("it is not a regular file".to_string());
    }
    // SAFETY: `geteuid` takes no arguments, touches no memory and cannot fail.
    let user = unsafe { libc::geteuid() };
    if metadata.uid() != user {
        return Some(format!(
            "it is owned by user {}, not by the user running the server ({user}); `chown` it or \
             delete it to have a new token generated",
            metadata.uid()
        ));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "its mode {mode:04o} lets group or others read or write it; run `chmod 600` on it"
        ));
    }
    None
}

#[cfg(not(unix))]
fn untrusted(metadata: &std::fs::Metadata) -> Option<String> {
    (!metadata.is_file()).then(|| "it is not a regular file".to_string())
}

/// A lock on a data directory's `server.lock`, held for as long as this value lives: shared
/// by every running server, exclusive for a restore, so that neither starts while the other
/// runs.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// Takes `dir`'s lock, shared (a server) or exclusive (a restore), without waiting. `Ok(Err)`
/// says the other kind holds it.
pub fn lock(dir: &Path, exclusive: bool) -> Result<Result<DirLock, ()>, DataDirError> {
    flock(&dir.join("server.lock"), exclusive)
}

/// Takes `dir`'s serving lock exclusively, without waiting: a server on embedded SQLite
/// holds it until it exits, drain and `stop`s included, so a second server never serves the
/// same database file meanwhile (SQLite's writers in two processes would contend, and core's
/// write queue is per process). `Ok(Err)` says another server holds it.
pub fn serving_lock(dir: &Path) -> Result<Result<DirLock, ()>, DataDirError> {
    flock(&dir.join("serving.lock"), true)
}

fn flock(path: &Path, exclusive: bool) -> Result<Result<DirLock, ()>, DataDirError> {
    let io = |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let operation = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: `flock` on a descriptor this function owns; the lock goes with the file.
        if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(Err(()));
            }
            return Err(io(error));
        }
    }
    Ok(Ok(DirLock { _file: file }))
}
