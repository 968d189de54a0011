//! Loads a project: service files, table YAML, column templates, sink groups, the type-mapping override and the tenancy pattern.
//!
//! [`load_project`] walks the project once with a `Loader`, the context every
//! step shares (the root, the problems found so far, the files read, the
//! parsed table files). Each concern has its module:
//!
//! - `project_files`: column templates, the mapping override, sink and source groups;
//! - `services`: service files, their pattern and sinks;
//! - `sink_tables`: one sink's tables, from `<schema>.<Table>: {from: ...}` to a
//!   [`SinkTable`](crate::project::SinkTable) with its columns and derived names;
//! - `table_files`: finding, parsing and caching table YAML;
//! - `renames`: `renamed_from` on columns, checked and turned into renames;
//! - `distribution`: `distribution:` of sinks and tables, resolved and checked for Citus;
//! - `names`: file and object names that would collide within a sink;
//! - `findings`: problems with typed locations, resolved to lines when reported.
//!
//! Every problem is collected, not just the first; a project with any error
//! loads as [`Error::Invalid`] with all of them.

mod distribution;
mod findings;
mod names;
mod project_files;
mod renames;
mod services;
mod sink_tables;
mod table_files;

use std::path::{Path, PathBuf};

use cdc_core::layout::SERVICES_DIR;
use serde::de::DeserializeOwned;

use self::findings::{resolve_all, unreadable, Finding};
use self::table_files::TableFiles;
use crate::error::Error;
use crate::project::{Project, Service};
use crate::yaml::read_text;
pub use crate::yaml::{parse_yaml, MAX_INDENT, MAX_NESTING, MAX_YAML_BYTES};

/// Which part of a project to load.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this service.
    pub service: Option<String>,
    /// Only this sink.
    pub sink: Option<String>,
}

/// Loads the whole project under `root`.
pub fn load_project(root: &Path, filter: &Filter) -> Result<Project, Error> {
    Loader::new(root).load(filter)
}

/// The state shared by every step of loading one project.
#[derive(Debug)]
struct Loader {
    /// The project root; paths in findings are relative to it.
    root: PathBuf,
    /// Errors found so far.
    errors: Vec<Finding>,
    /// Warnings found so far.
    warnings: Vec<Finding>,
    /// Every file and directory read, for `cargo:rerun-if-changed`.
    inputs: Vec<PathBuf>,
    /// Table YAML parsed so far.
    tables: TableFiles,
}

impl Loader {
    fn new(root: &Path) -> Loader {
        Loader {
            root: root.to_path_buf(),
            errors: Vec::new(),
            warnings: Vec::new(),
            inputs: Vec::new(),
            tables: TableFiles::default(),
        }
    }

    /// `path` relative to the project root (unchanged when outside it).
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    fn error(&mut self, finding: Finding) {
        self.errors.push(finding);
    }

    fn warn(&mut self, finding: Finding) {
        self.warnings.push(finding);
    }

    /// Reads and parses one YAML file relative to the root; `Ok(None)` when it
    /// does not exist or does not parse (the parse error is recorded).
    fn read_yaml<T: DeserializeOwned>(
        &mut self,
        rel: impl AsRef<Path>,
    ) -> Result<Option<T>, Error> {
        let rel = rel.as_ref();
        let path = self.root.join(rel);
        // A dangling symbolic link is there, and an error; a missing file is not.
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        self.inputs.push(path.clone());
        let text = match read_text(&path, rel) {
            Ok(text) => text,
            Err(error) => {
                self.errors.extend(unreadable(rel, error));
                return Ok(None);
            }
        };
        match parse_yaml(rel, &text) {
            Ok(value) => Ok(Some(value)),
            Err(diagnostic) => {
                self.error(diagnostic.into());
                Ok(None)
            }
        }
    }

    fn load(mut self, filter: &Filter) -> Result<Project, Error> {
        self.inputs.push(self.root.join(SERVICES_DIR));
        let project_files = self.load_project_files()?;
        let services = self.load_services(filter, &project_files)?;
        self.check_filter(filter, &services);
        if !self.errors.is_empty() {
            return Err(Error::Invalid(resolve_all(&self.root, self.errors)));
        }
        self.inputs.sort();
        self.inputs.dedup();
        // Freeing every parsed table file takes a while: use all threads.
        self.tables.free_in_parallel();
        Ok(Project {
            warnings: resolve_all(&self.root, self.warnings),
            root: self.root,
            services,
            inputs: self.inputs,
        })
    }

    /// A filter that selects nothing is an error, unless something else is wrong already.
    fn check_filter(&mut self, filter: &Filter, services: &[Service]) {
        if !self.errors.is_empty() {
            return;
        }
        if let Some(wanted) = &filter.service {
            if services.is_empty() {
                self.error(Finding::in_file(
                    SERVICES_DIR,
                    format!("no service named `{wanted}`"),
                ));
                return;
            }
        }
        if let Some(wanted) = &filter.sink {
            let sinks = || services.iter().flat_map(|s| s.sinks.iter());
            if !sinks().any(|sink| &sink.name == wanted) {
                let known: Vec<&str> = sinks().map(|sink| sink.name.as_str()).collect();
                self.error(Finding::in_file(
                    SERVICES_DIR,
                    format!("no sink named `{wanted}` (known: {})", known.join(", ")),
                ));
            }
        }
    }
}
