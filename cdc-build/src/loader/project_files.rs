//! Project-wide inputs: column templates, the type-mapping override, and the sink and source groups.

use std::collections::BTreeMap;

use cdc_core::layout::{MAPPING_FILE, SINK_GROUPS_FILE, SOURCE_GROUPS_FILE, TEMPLATES_FILE};
use serde_norway::Value;

use super::findings::Finding;
use super::Loader;
use crate::columns::check_single_expression;
use crate::error::Error;
use crate::location::YamlPath;
use crate::model::{RawMapping, RawTemplate, RawTemplates};
use crate::types::{PgType, TypeMapping};

/// What every service of a project shares.
#[derive(Debug, Default)]
pub(super) struct ProjectFiles {
    /// Column templates by key.
    pub templates: BTreeMap<String, RawTemplate>,
    /// The built-in type mapping with the project's overrides.
    pub mapping: TypeMapping,
    /// `sink-groups.yaml`: databases per environment of sinks that name none.
    pub sink_groups: Option<Value>,
    /// `source-groups.yaml`: the tenancy pattern of services that name none.
    pub source_groups: Option<Value>,
}

impl ProjectFiles {
    /// The pattern that `source-groups.yaml` gives `service`: that of the group
    /// whose `sources` name it.
    pub fn pattern_of(&self, service: &str) -> Option<String> {
        let groups = self.source_groups.as_ref()?.as_mapping()?;
        groups.values().find_map(|group| {
            let sources = group.get("sources")?.as_mapping()?;
            sources.get(service)?;
            group.get("pattern")?.as_str().map(str::to_string)
        })
    }

    /// The databases per environment that `sink-groups.yaml` gives a sink:
    /// `<group>.sources.<source>.<env>.database`, where a sink named
    /// `<group>.<source>` names both and any other sink is a group fed by `service`.
    pub fn databases_of(&self, sink_name: &str, service: &str) -> BTreeMap<String, String> {
        let (group, source) = sink_name.split_once('.').unwrap_or((sink_name, service));
        let Some(envs) = self
            .sink_groups
            .as_ref()
            .and_then(|g| g.get(group))
            .and_then(|g| g.get("sources"))
            .and_then(|s| s.get(source))
            .and_then(Value::as_mapping)
        else {
            return BTreeMap::new();
        };
        envs.iter()
            .filter_map(|(env, v)| {
                Some((
                    env.as_str()?.to_string(),
                    v.get("database")?.as_str()?.to_string(),
                ))
            })
            .collect()
    }
}

impl Loader {
    /// Reads the project-wide files that exist; problems in them are recorded.
    pub(super) fn load_project_files(&mut self) -> Result<ProjectFiles, Error> {
        let templates = self
            .read_yaml::<RawTemplates>(TEMPLATES_FILE)?
            .map(|t| t.templates)
            .unwrap_or_default();
        for (key, template) in &templates {
            if let Err(message) = PgType::parse(&template.type_name) {
                let path = YamlPath::root().key("templates").key(key).key("type");
                self.error(Finding::at(TEMPLATES_FILE, path, message));
            }
            if let Some(default) = &template.default {
                if let Err(message) = check_single_expression(default) {
                    let path = YamlPath::root().key("templates").key(key).key("default");
                    let message = format!("default `{default}` {message}");
                    self.error(Finding::at(TEMPLATES_FILE, path, message));
                }
            }
        }
        let mapping = self.load_mapping()?;
        let sink_groups = self.read_yaml::<Value>(SINK_GROUPS_FILE)?;
        let source_groups = self.read_yaml::<Value>(SOURCE_GROUPS_FILE)?;
        Ok(ProjectFiles {
            templates,
            mapping,
            sink_groups,
            source_groups,
        })
    }

    fn load_mapping(&mut self) -> Result<TypeMapping, Error> {
        let Some(raw) = self.read_yaml::<RawMapping>(MAPPING_FILE)? else {
            return Ok(TypeMapping::default());
        };
        let mut overrides = BTreeMap::new();
        for (mssql, pg) in raw.mappings {
            match PgType::parse(&pg) {
                Ok(pg) => {
                    overrides.insert(mssql.to_ascii_lowercase(), pg);
                }
                Err(message) => {
                    let path = YamlPath::root().key("mappings").key(&mssql);
                    self.error(Finding::at(MAPPING_FILE, path, message));
                }
            }
        }
        Ok(TypeMapping::with_overrides(overrides))
    }
}
