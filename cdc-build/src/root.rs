//! Finding the project root: the first directory from a start directory upward that holds a project.

use std::fmt;
use std::path::{Path, PathBuf};

use cdc_core::layout::{MIGRATIONS_DIR, SERVICES_DIR};

use crate::error::Error;

/// What marks a directory as the project root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootMarker {
    /// A `services/` directory: a project that generates (`generate`, `Builder`).
    Services,
    /// A `migrations/` or a `services/` directory: a project that applies
    /// committed migrations, with or without its YAML.
    ServicesOrMigrations,
}

impl RootMarker {
    /// The directories, any of which marks a root.
    pub fn dirs(self) -> &'static [&'static str] {
        match self {
            RootMarker::Services => &[SERVICES_DIR],
            RootMarker::ServicesOrMigrations => &[MIGRATIONS_DIR, SERVICES_DIR],
        }
    }
}

impl fmt::Display for RootMarker {
    /// "`services/`", "`migrations/` or `services/`".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, dir) in self.dirs().iter().enumerate() {
            if index > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "`{dir}/`")?;
        }
        Ok(())
    }
}

/// The first directory from `start` upward (canonicalised) that holds one of
/// `marker`'s directories.
pub fn find_project_root(start: &Path, marker: RootMarker) -> Result<PathBuf, Error> {
    let start = start.canonicalize().map_err(|e| Error::io(start, e))?;
    start
        .ancestors()
        .find(|dir| marker.dirs().iter().any(|name| dir.join(name).is_dir()))
        .map(Path::to_path_buf)
        .ok_or(Error::ProjectNotFound { start, marker })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_marked_directory_upward_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let deep = root.join("services/_schemas/app");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(root.join("applied/migrations")).unwrap();
        assert_eq!(
            find_project_root(&deep, RootMarker::Services).unwrap(),
            root
        );
        let applied = root.join("applied");
        assert_eq!(
            find_project_root(&applied, RootMarker::ServicesOrMigrations).unwrap(),
            applied
        );
        assert_eq!(
            find_project_root(&applied, RootMarker::Services).unwrap(),
            root
        );
        assert!(matches!(
            find_project_root(&root.join("missing"), RootMarker::Services),
            Err(Error::Io { .. })
        ));
    }
}
