//! A sink's migrations as one value, whether read from a directory (CLI) or
//! embedded in a binary by `include_migrations!` (runtime).
//!
//! Both paths go through [`Migrations::load_dir`]'s checks: the macro calls it at
//! compile time, the CLI at run time, so a file accepted by one is accepted by
//! the other.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::category::{apply_order, FileCategory};
use crate::checksum::{split_migration, Checksum, ChecksumError};
use crate::manifest::{Manifest, ManifestError};

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// Path relative to the sink directory, such as `01-tables/Actor.sql`.
    pub path: Cow<'static, str>,
    /// What the file holds.
    pub category: FileCategory,
    /// The checksum written in the file (verified against its body when loaded).
    pub checksum: Checksum,
    /// The whole file: header, checksum line, body.
    pub contents: Cow<'static, str>,
}

impl MigrationFile {
    /// The body: everything after the checksum line.
    pub fn body(&self) -> &str {
        split_migration(&self.contents)
            .map(|s| s.body)
            .unwrap_or(&self.contents)
    }

    /// 1-based line of the body's first line within the file.
    pub fn body_first_line(&self) -> usize {
        split_migration(&self.contents)
            .map(|s| s.body_first_line)
            .unwrap_or(1)
    }

    /// Checks the checksum line against the body and against [`Self::checksum`].
    pub fn verify(&self) -> Result<(), ChecksumError> {
        let split = split_migration(&self.contents)?;
        split.verify()?;
        if split.embedded != self.checksum {
            return Err(ChecksumError::Mismatch {
                embedded: self.checksum,
                actual: split.embedded,
            });
        }
        Ok(())
    }
}

/// An environment and its database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseEntry {
    /// Environment, such as `dev`.
    pub env: Cow<'static, str>,
    /// Database name in that environment.
    pub database: Cow<'static, str>,
}

/// Every migration of one sink, in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrations {
    sink: Cow<'static, str>,
    databases: Cow<'static, [DatabaseEntry]>,
    files: Cow<'static, [MigrationFile]>,
    /// Every checksum was verified when the set was built (loaded from disk, or
    /// embedded by the macro, which verifies at compile time).
    verified: bool,
}

/// Why a sink directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is malformed.
    #[error("{}: {source}", .path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ManifestError,
    },
    /// The manifest lists a file that is not there.
    #[error("{}: listed in manifest.yaml but missing", .path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
    /// A file's checksum line is missing, malformed or does not match its body.
    #[error("{}: {source}", .path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ChecksumError,
    },
}

impl Migrations {
    /// Builds a set from embedded parts; `files` must be in apply order and
    /// verified (the `include_migrations!` macro does both at compile time, so
    /// a boot does not hash the files again).
    pub const fn from_static(
        sink: &'static str,
        databases: &'static [DatabaseEntry],
        files: &'static [MigrationFile],
    ) -> Migrations {
        Migrations {
            sink: Cow::Borrowed(sink),
            databases: Cow::Borrowed(databases),
            files: Cow::Borrowed(files),
            verified: true,
        }
    }

    /// Builds a set from owned parts, ordering the files for apply. Nothing is
    /// verified yet: the migrator verifies every file before it applies any.
    pub fn from_parts(
        sink: String,
        databases: Vec<DatabaseEntry>,
        mut files: Vec<MigrationFile>,
    ) -> Migrations {
        files.sort_by_key(|f| f.category);
        Migrations {
            sink: Cow::Owned(sink),
            databases: Cow::Owned(databases),
            files: Cow::Owned(files),
            verified: false,
        }
    }

    /// Whether every checksum was verified when the set was built.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Reads `dir/manifest.yaml` and every file it lists, verifying each
    /// checksum; files come back in apply order.
    pub fn load_dir(dir: &Path) -> Result<Migrations, LoadError> {
        let (manifest, files) = read_dir_files(dir)?;
        let databases = manifest
            .sink_target
            .databases
            .iter()
            .map(|(env, db)| DatabaseEntry {
                env: Cow::Owned(env.clone()),
                database: Cow::Owned(db.clone()),
            })
            .collect();
        Ok(Migrations {
            sink: Cow::Owned(manifest.sink_target.name.clone()),
            databases: Cow::Owned(databases),
            files: Cow::Owned(files),
            verified: true,
        })
    }

    /// The sink name.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// Database per environment.
    pub fn databases(&self) -> &[DatabaseEntry] {
        &self.databases
    }

    /// The database of an environment.
    pub fn database(&self, env: &str) -> Option<&str> {
        self.databases
            .iter()
            .find(|d| d.env == env)
            .map(|d| d.database.as_ref())
    }

    /// Files in apply order.
    pub fn files(&self) -> &[MigrationFile] {
        &self.files
    }

    /// Verifies every file's checksum against its body.
    pub fn verify(&self) -> Result<(), (String, ChecksumError)> {
        for file in self.files.iter() {
            file.verify().map_err(|e| (file.path.to_string(), e))?;
        }
        Ok(())
    }
}

/// Reads and verifies the manifest and files of a sink directory; the
/// compile-time macro uses this same function.
pub fn read_dir_files(dir: &Path) -> Result<(Manifest, Vec<MigrationFile>), LoadError> {
    let manifest_path = dir.join(crate::layout::MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| LoadError::Io {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest = Manifest::parse(&text).map_err(|source| LoadError::Manifest {
        path: manifest_path.clone(),
        source,
    })?;
    let mut files = Vec::with_capacity(manifest.tables.len() + 2);
    for entry in apply_order(&manifest) {
        let path = dir.join(entry.path);
        let contents = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::MissingFile { path })
            }
            Err(source) => return Err(LoadError::Io { path, source }),
        };
        let split = split_migration(&contents).map_err(|source| LoadError::Checksum {
            path: path.clone(),
            source,
        })?;
        let checksum = split.verify().map_err(|source| LoadError::Checksum {
            path: path.clone(),
            source,
        })?;
        files.push(MigrationFile {
            path: Cow::Owned(entry.path.to_string()),
            category: entry.category,
            checksum,
            contents: Cow::Owned(contents),
        });
    }
    Ok((manifest, files))
}

/// A file's category as it is written in generated code (`FileCategory::Table`).
pub fn category_ident(category: FileCategory) -> &'static str {
    match category {
        FileCategory::Infrastructure => "Infrastructure",
        FileCategory::Table => "Table",
        FileCategory::Staging => "Staging",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::assemble;

    fn write_sink(dir: &Path, files: &[(&str, String)]) {
        let manifest = Manifest {
            generated_at: "2000-01-01 00:00:00 UTC".into(),
            table_count: 1,
            schema_count: 1,
            sink_target: crate::manifest::SinkTarget {
                name: "s".into(),
                databases: [("dev".to_string(), "db_dev".to_string())].into(),
            },
            infrastructure: vec!["00-infrastructure/01-create-schemas.sql".into()],
            tables: vec!["01-tables/T.sql".into(), "01-tables/T-staging.sql".into()],
        };
        std::fs::create_dir_all(dir.join("00-infrastructure")).unwrap();
        std::fs::create_dir_all(dir.join("01-tables")).unwrap();
        std::fs::write(dir.join("manifest.yaml"), manifest.render()).unwrap();
        for (path, text) in files {
            std::fs::write(dir.join(path), text).unwrap();
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cdc-core-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn loads_in_apply_order_and_detects_tampering() {
        let dir = temp_dir("load");
        let files = [
            (
                "00-infrastructure/01-create-schemas.sql",
                assemble("-- h\n", "CREATE SCHEMA s;\n"),
            ),
            (
                "01-tables/T.sql",
                assemble("-- h\n", "CREATE TABLE s.t ();\n"),
            ),
            (
                "01-tables/T-staging.sql",
                assemble("-- h\n", "CREATE TABLE s.stg ();\n"),
            ),
        ];
        write_sink(&dir, &files);
        let loaded = Migrations::load_dir(&dir).unwrap();
        assert_eq!(loaded.sink(), "s");
        assert_eq!(loaded.database("dev"), Some("db_dev"));
        let order: Vec<&str> = loaded.files().iter().map(|f| f.path.as_ref()).collect();
        assert_eq!(
            order,
            [
                "00-infrastructure/01-create-schemas.sql",
                "01-tables/T.sql",
                "01-tables/T-staging.sql"
            ]
        );
        assert!(loaded.verify().is_ok());
        assert_eq!(loaded.files()[1].body(), "CREATE TABLE s.t ();\n");

        std::fs::write(
            dir.join("01-tables/T.sql"),
            files[1].1.replace("t ()", "u ()"),
        )
        .unwrap();
        match Migrations::load_dir(&dir) {
            Err(LoadError::Checksum {
                path,
                source: ChecksumError::Mismatch { .. },
            }) => assert!(path.ends_with("01-tables/T.sql")),
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        std::fs::remove_file(dir.join("01-tables/T.sql")).unwrap();
        assert!(matches!(
            Migrations::load_dir(&dir),
            Err(LoadError::MissingFile { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_dir_refuses_a_manifest_path_outside_the_sink() {
        let root = temp_dir("escape");
        let dir = root.join("sink");
        write_sink(&dir, &[]);
        std::fs::write(root.join("x.sql"), assemble("-- h\n", "DROP TABLE x;\n")).unwrap();
        let manifest = dir.join("manifest.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text.replace("\"01-tables/T.sql\"", "\"01-tables/../../x.sql\"");
        std::fs::write(&manifest, &text).unwrap();
        match Migrations::load_dir(&dir) {
            Err(LoadError::Manifest { path, source }) => {
                assert!(path.ends_with("manifest.yaml"));
                assert_eq!(source.line, 12, "{source}");
                assert!(source.message.contains("01-tables/../../x.sql"), "{source}");
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
