//! A plugin's own data folder, `<data>/plugins/<name>/`: path helpers that refuse anything
//! resolving outside it (`..`, absolute paths, symbolic links that lead out), and atomic
//! writes. Reads need `plugin:read`, writes `plugin:write`.

use std::io::Write;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};

use crate::abi::permission;
use crate::abi::plugin::Plugin;

/// Why a data-folder operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The path is not a plain relative path inside the folder.
    #[error("`{path}` is outside the plugin's data folder: {problem}")]
    Outside {
        /// The path as given.
        path: String,
        /// Why.
        problem: &'static str,
    },
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The path, relative to the plugin's folder.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The data folder of one plugin, without permission checks (core's view, for backups).
#[derive(Clone, Debug)]
pub struct Folder {
    root: PathBuf,
}

impl Folder {
    /// `<data_dir>/plugins/<plugin>`; created on first write.
    pub fn of(data_dir: &Path, plugin: &str) -> Folder {
        Folder {
            root: data_dir.join("plugins").join(plugin),
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` joined to the folder, after checking that it stays inside: it must be
    /// relative, without `..`, and no existing part of it may be a symbolic link that
    /// resolves outside the folder.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, FilesError> {
        let outside = |problem| FilesError::Outside {
            path: relative.to_string(),
            problem,
        };
        if relative.contains('\0') {
            return Err(outside("it contains a NUL byte"));
        }
        let path = Path::new(relative);
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(outside("`..` is not allowed")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(outside("it must be relative to the data folder"));
                }
            }
        }
        let full = self.root.join(&clean);
        // The deepest part that exists, resolved through any links, must still be inside.
        let root = match self.root.canonicalize() {
            Ok(root) => root,
            // Nothing exists yet, so no link can lead out.
            Err(_) => return Ok(full),
        };
        let mut existing = full.as_path();
        loop {
            if std::fs::symlink_metadata(existing).is_ok() {
                let resolved = existing.canonicalize().map_err(|source| FilesError::Io {
                    path: relative.to_string(),
                    source,
                })?;
                if !resolved.starts_with(&root) {
                    return Err(outside(
                        "a symbolic link in it leads out of the data folder",
                    ));
                }
                return Ok(full);
            }
            match existing.parent() {
                Some(parent) => existing = parent,
                None => return Ok(full),
            }
        }
    }

    fn io(relative: &str) -> impl Fn(std::io::Error) -> FilesError + '_ {
        move |source| FilesError::Io {
            path: relative.to_string(),
            source,
        }
    }

    /// The bytes of `relative`.
    pub fn read(&self, relative: &str) -> Result<Vec<u8>, FilesError> {
        std::fs::read(self.resolve(relative)?).map_err(Self::io(relative))
    }

    /// Replaces `relative` with `bytes` atomically (a temporary file renamed over it), so a
    /// reader sees the old or the new content, never half of it; creates its folders.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> Result<(), FilesError> {
        let path = self.resolve(relative)?;
        let parent = path.parent().unwrap_or(&self.root);
        crate::storage::data_dir::create(parent).map_err(|error| FilesError::Io {
            path: relative.to_string(),
            source: std::io::Error::other(error.to_string()),
        })?;
        // Resolve again now that the folders exist: a link among them is caught here.
        let path = self.resolve(relative)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            Self::io(relative)(error)
        })
    }

    /// Appends `bytes` to `relative`, creating it and its folders; answers its new length.
    /// For logs and journals: a crash may leave the last append cut short.
    pub fn append(&self, relative: &str, bytes: &[u8]) -> Result<u64, FilesError> {
        let path = self.resolve(relative)?;
        let parent = path.parent().unwrap_or(&self.root);
        crate::storage::data_dir::create(parent).map_err(|error| FilesError::Io {
            path: relative.to_string(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let path = self.resolve(relative)?;
        let append = || -> std::io::Result<u64> {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(bytes)?;
            Ok(file.metadata()?.len())
        };
        append().map_err(Self::io(relative))
    }

    /// Renames `from` to `to` inside the folder, replacing `to`; returns whether `from`
    /// existed.
    pub fn rename(&self, from: &str, to: &str) -> Result<bool, FilesError> {
        match std::fs::rename(self.resolve(from)?, self.resolve(to)?) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(Self::io(from)(error)),
        }
    }

    /// Removes the file `relative`; returns whether it existed.
    pub fn remove(&self, relative: &str) -> Result<bool, FilesError> {
        match std::fs::remove_file(self.resolve(relative)?) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(Self::io(relative)(error)),
        }
    }

    /// The names in the folder `relative` (`""` for the data folder itself), sorted; empty
    /// if it does not exist.
    pub fn list(&self, relative: &str) -> Result<Vec<String>, FilesError> {
        let entries = match std::fs::read_dir(self.resolve(relative)?) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Self::io(relative)(error)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Self::io(relative))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

/// Plugin `P`'s data folder, from its context. The methods do blocking file I/O on tokio's
/// blocking pool.
pub struct DataFolder<P> {
    folder: Folder,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for DataFolder<P> {
    fn clone(&self) -> Self {
        DataFolder {
            folder: self.folder.clone(),
            plugin: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for DataFolder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFolder")
            .field("root", &self.folder.root)
            .finish()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(FilesError::Io {
                path: String::new(),
                source: std::io::Error::other(error.to_string()),
            })
        })
}

impl<P: Plugin> DataFolder<P> {
    pub(crate) fn new(data_dir: &Path) -> DataFolder<P> {
        DataFolder {
            folder: Folder::of(data_dir, P::NAME),
            plugin: PhantomData,
        }
    }

    /// The folder, `<data>/plugins/<name>/`.
    pub fn root(&self) -> &Path {
        self.folder.root()
    }

    /// `relative` inside the folder, or an error if it would resolve outside; see
    /// [`Folder::resolve`].
    pub fn path(&self, relative: &str) -> Result<PathBuf, FilesError>
    where
        P: permission::ReadData,
    {
        self.folder.resolve(relative)
    }

    /// The bytes of `relative`.
    pub async fn read(&self, relative: &str) -> Result<Vec<u8>, FilesError>
    where
        P: permission::ReadData,
    {
        let (folder, relative) = (self.folder.clone(), relative.to_string());
        blocking(move || folder.read(&relative)).await
    }

    /// The names in the folder `relative` (`""` for the data folder itself), sorted.
    pub async fn list(&self, relative: &str) -> Result<Vec<String>, FilesError>
    where
        P: permission::ReadData,
    {
        let (folder, relative) = (self.folder.clone(), relative.to_string());
        blocking(move || folder.list(&relative)).await
    }

    /// Replaces `relative` with `bytes` atomically, creating its folders.
    pub async fn write(&self, relative: &str, bytes: impl Into<Vec<u8>>) -> Result<(), FilesError>
    where
        P: permission::WriteData,
    {
        let (folder, relative, bytes) = (self.folder.clone(), relative.to_string(), bytes.into());
        blocking(move || folder.write(&relative, &bytes)).await
    }

    /// Appends `bytes` to `relative`, creating it and its folders; answers its new length.
    pub async fn append(&self, relative: &str, bytes: impl Into<Vec<u8>>) -> Result<u64, FilesError>
    where
        P: permission::WriteData,
    {
        let (folder, relative, bytes) = (self.folder.clone(), relative.to_string(), bytes.into());
        blocking(move || folder.append(&relative, &bytes)).await
    }

    /// Renames `from` to `to` inside the folder, replacing `to`; returns whether `from`
    /// existed.
    pub async fn rename(&self, from: &str, to: &str) -> Result<bool, FilesError>
    where
        P: permission::WriteData,
    {
        let (folder, from, to) = (self.folder.clone(), from.to_string(), to.to_string());
        blocking(move || folder.rename(&from, &to)).await
    }

    /// Removes the file `relative`; returns whether it existed.
    pub async fn remove(&self, relative: &str) -> Result<bool, FilesError>
    where
        P: permission::WriteData,
    {
        let (folder, relative) = (self.folder.clone(), relative.to_string());
        blocking(move || folder.remove(&relative)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Not `crate::testing::fresh_dir`: storage sits below `testing` in core's layers.
    fn folder() -> (PathBuf, Folder) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let data = std::env::temp_dir().join(format!(
            "plexichat-files-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data);
        (data.clone(), Folder::of(&data, "demo"))
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        let (_, folder) = folder();
        for bad in ["../other/x", "a/../../x", "/etc/passwd", "a\0b"] {
            assert!(
                matches!(folder.resolve(bad), Err(FilesError::Outside { .. })),
                "{bad}"
            );
        }
        assert!(
            folder
                .resolve("notes/today.txt")
                .unwrap()
                .ends_with("plugins/demo/notes/today.txt")
        );
    }

    #[test]
    fn writes_are_atomic_and_read_back() {
        let (_, folder) = folder();
        folder.write("notes/a.txt", b"one").unwrap();
        folder.write("notes/a.txt", b"two").unwrap();
        assert_eq!(folder.read("notes/a.txt").unwrap(), b"two");
        assert_eq!(folder.list("notes").unwrap(), ["a.txt"]);
        assert!(folder.remove("notes/a.txt").unwrap());
        assert!(!folder.remove("notes/a.txt").unwrap());
    }

    #[test]
    fn appends_grow_a_file_and_renames_stay_inside() {
        let (_, folder) = folder();
        assert_eq!(folder.append("logs/a.log", b"one\n").unwrap(), 4);
        assert_eq!(folder.append("logs/a.log", b"two\n").unwrap(), 8);
        assert!(folder.rename("logs/a.log", "logs/a.log.1").unwrap());
        assert_eq!(folder.read("logs/a.log.1").unwrap(), b"one\ntwo\n");
        assert!(!folder.rename("logs/a.log", "logs/a.log.2").unwrap());
        assert!(matches!(
            folder.rename("logs/a.log.1", "../escaped"),
            Err(FilesError::Outside { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_out_of_the_folder_is_refused() {
        let (data, folder) = folder();
        folder.write("inside.txt", b"x").unwrap();
        let outside = data.join("secret");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("token"), b"hunter2").unwrap();
        std::os::unix::fs::symlink(&outside, folder.root().join("escape")).unwrap();
        for bad in ["escape/token", "escape/new.txt"] {
            assert!(
                matches!(folder.resolve(bad), Err(FilesError::Outside { .. })),
                "{bad}"
            );
        }
        assert!(folder.read("escape/token").is_err());
        assert!(folder.write("escape/new.txt", b"x").is_err());
        assert!(!outside.join("new.txt").exists());
        // A link that stays inside is fine.
        std::os::unix::fs::symlink(
            folder.root().join("inside.txt"),
            folder.root().join("alias"),
        )
        .unwrap();
        assert_eq!(folder.read("alias").unwrap(), b"x");
    }
}
