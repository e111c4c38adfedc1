//! Validates JSON documents we write (CycloneDX, SARIF) against the
//! published schemas in `../shared/schemas`, offline.
//!
//! The CycloneDX schemas refer to `spdx.schema.json` and
//! `jsf-0.82.schema.json` relative to their `$id`
//! (`http://cyclonedx.org/schema/…`); every such reference is answered with
//! the file of the same name beside the schema, never from the network.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use jsonschema::{Retrieve, Uri};
use serde_json::Value;

/// Answers `$ref`s with files from one folder, by the last segment of the
/// referenced URI.
struct FolderRetriever {
    folder: PathBuf,
}

impl Retrieve for FolderRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let path = self.folder.join(&name);
        if name.is_empty() || !path.is_file() {
            return Err(format!("no local copy of `{uri}` in `{}`", self.folder.display()).into());
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Validates `instance` against the schema at `schema_path` (formats
/// checked too). `Err` lists every violation as `<instance path>: <message>`.
pub fn validate_json(schema_path: &Path, instance: &Value) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(schema_path)
        .map_err(|err| vec![format!("could not read `{}`: {err}", schema_path.display())])?;
    let schema: Value = serde_json::from_str(&text)
        .map_err(|err| vec![format!("`{}` is not JSON: {err}", schema_path.display())])?;
    let folder = schema_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .to_owned();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .with_retriever(FolderRetriever { folder })
        .build(&schema)
        .map_err(|err| {
            vec![format!(
                "could not compile `{}`: {err}",
                schema_path.display()
            )]
        })?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|err| format!("{}: {err}", err.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The published schema `name` (e.g. `bom-1.5.schema.json`).
pub fn schema(name: &str) -> PathBuf {
    crate::common::shared_path("schemas").join(name)
}

#[test]
fn rejects_an_invalid_cyclonedx_document_and_resolves_spdx_refs() {
    let schema = schema("bom-1.5.schema.json");
    let valid = serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "components": [{"type": "library", "name": "x",
            "licenses": [{"license": {"id": "MIT"}}]}]
    });
    assert_eq!(validate_json(&schema, &valid), Ok(()));

    // `NOT-A-LICENCE` is not in the SPDX enum the schema takes from
    // spdx.schema.json: only a resolved `$ref` can reject it.
    let mut invalid = valid.clone();
    invalid["components"][0]["licenses"][0]["license"]["id"] = "NOT-A-LICENCE".into();
    invalid["serialNumber"] = "not-a-urn".into();
    let errors = validate_json(&schema, &invalid).expect_err("invalid");
    assert!(errors.len() >= 2, "{errors:?}");
}
