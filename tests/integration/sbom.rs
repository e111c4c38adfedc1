//! The sbom gate end to end: schema validity, reproducibility, the shared
//! cases 011 and 012, the component set against cargo-cyclonedx on the
//! lockfile corpus, and bad input.

// Tests that cannot run here print why they skipped.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use portcullis::gate::RunSettings;
use portcullis::pipeline::{GateReport, Outcome};
use serde_json::Value;

use crate::common;
use crate::common_schema::{schema, validate_json};

fn policy(options: &str) -> portcullis::policy::Policy {
    common::policy(&format!(
        "version = 1\n[[stage]]\nname = \"package\"\ngates = [\"sbom\"]\n[gates.sbom]\n{options}\n"
    ))
}

/// Runs the sbom gate alone over `root`, offline.
fn run_sbom(root: &Path, options: &str, source_date_epoch: Option<i64>) -> GateReport {
    let mut settings: RunSettings = common::settings();
    settings.source_date_epoch = source_date_epoch;
    let result = common::run_with(root, policy(options), &["sbom"], settings);
    result
        .gates
        .into_iter()
        .find(|gate| gate.id == "sbom")
        .expect("the sbom gate ran")
}

/// The one SBOM of a passing run, parsed.
fn sbom_of(report: &GateReport) -> Value {
    assert!(
        report.errors.is_empty(),
        "sbom gate errored: {:#?}",
        report.errors
    );
    assert_eq!(report.artifacts.len(), 1, "{:?}", report.artifacts);
    let artifact = &report.artifacts[0];
    assert_eq!(artifact.media_type, "application/vnd.cyclonedx+json");
    serde_json::from_slice(&artifact.bytes).expect("the SBOM is JSON")
}

fn assert_valid_cyclonedx(sbom: &Value) {
    if let Err(errors) = validate_json(&schema("bom-1.5.schema.json"), sbom) {
        panic!("SBOM is not valid CycloneDX 1.5:\n{}", errors.join("\n"));
    }
}

fn components(sbom: &Value) -> &Vec<Value> {
    sbom["components"].as_array().expect("components")
}

fn component<'a>(sbom: &'a Value, name: &str) -> Option<&'a Value> {
    components(sbom).iter().find(|c| c["name"] == name)
}

/// `name version` of every component and of the metadata component when it
/// is a package (a virtual workspace's stands for the folder, which
/// cargo-cyclonedx does not describe).
fn component_set(sbom: &Value) -> BTreeSet<String> {
    let workspace = &sbom["metadata"]["component"];
    let workspace = (!str_of(&workspace["bom-ref"]).starts_with("workspace:")).then_some(workspace);
    components(sbom)
        .iter()
        .chain(workspace)
        .map(|c| format!("{} {}", str_of(&c["name"]), str_of(&c["version"])))
        .collect()
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn depends_on<'a>(sbom: &'a Value, bom_ref: &str) -> Vec<&'a str> {
    sbom["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .find(|d| d["ref"] == bom_ref)
        .and_then(|d| d["dependsOn"].as_array())
        .map(|refs| refs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn case(name: &str) -> PathBuf {
    common::shared_path("cases").join(name)
}

/// Decodes `%XX` escapes, as a purl parser does for qualifier values.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%'
            && idx + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[idx + 1..idx + 3], 16)
        {
            out.push(byte);
            idx += 3;
        } else {
            out.push(bytes[idx]);
            idx += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn sbom_of_this_repository_is_valid_cyclonedx_with_hashes_and_licences() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = run_sbom(root, "", Some(1_700_000_000));
    assert_eq!(report.outcome, Outcome::Passed, "{:?}", report.errors);
    let sbom = sbom_of(&report);
    assert_valid_cyclonedx(&sbom);

    assert_eq!(sbom["specVersion"], "1.5");
    assert_eq!(sbom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let workspace = &sbom["metadata"]["component"];
    assert_eq!(workspace["name"], "portcullis");
    assert_eq!(
        workspace["purl"],
        "pkg:cargo/portcullis@0.1.0?download_url=file://."
    );
    assert_eq!(report.artifacts[0].name, "sbom/portcullis.cdx.json");

    // The other workspace member is a component; every registry package
    // has the SHA-256 checksum Cargo.lock records for it.
    let xtask = component(&sbom, "xtask").expect("xtask member listed");
    assert_eq!(
        xtask["purl"],
        "pkg:cargo/xtask@0.1.0?download_url=file://xtask"
    );
    let lock = fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let serde = component(&sbom, "serde").expect("serde listed");
    let checksum = str_of(&serde["hashes"][0]["content"]);
    assert_eq!(serde["hashes"][0]["alg"], "SHA-256");
    assert!(
        lock.contains(&format!("checksum = \"{checksum}\"")),
        "{checksum}"
    );
    assert_eq!(serde["licenses"][0]["expression"], "MIT OR Apache-2.0");
    assert_eq!(serde["scope"], "required");
    let registry = components(&sbom)
        .iter()
        .filter(|c| !str_of(&c["purl"]).contains("download_url"));
    for component in registry {
        assert!(component["hashes"].is_array(), "no hash: {component}");
    }
    // dev-dependencies of the workspace (insta, proptest) do not ship.
    assert!(component(&sbom, "insta").is_none());
    assert!(component(&sbom, "proptest").is_none());
}

#[test]
fn same_source_date_epoch_gives_identical_bytes() {
    let root = case("012-sbom-build-only-dependency-scope");
    let options = "metadata-file = \"cargo-metadata.json\"";
    let first = run_sbom(&root, options, Some(1_700_000_000));
    let second = run_sbom(&root, options, Some(1_700_000_000));
    assert_eq!(first.artifacts[0].bytes, second.artifacts[0].bytes);

    let later = sbom_of(&run_sbom(&root, options, Some(1_800_000_000)));
    let first = sbom_of(&first);
    assert_ne!(first["serialNumber"], later["serialNumber"]);
    assert_eq!(first["components"], later["components"]);
    assert!(str_of(&first["serialNumber"]).starts_with("urn:uuid:"));
}

/// Case 011: a git dependency's purl carries `vcs_url` with the locked
/// commit; the registry one has no qualifiers.
#[test]
fn case_011_git_dependency_purl_has_vcs_url() {
    let report = run_sbom(
        &case("011-sbom-git-dependency-purl"),
        "metadata-file = \"cargo-metadata.json\"",
        Some(0),
    );
    let sbom = sbom_of(&report);
    assert_valid_cyclonedx(&sbom);

    let itoa = component(&sbom, "itoa").expect("itoa listed");
    assert_eq!(itoa["version"], "1.0.11");
    let purl = str_of(&itoa["purl"]);
    let (base, qualifiers) = purl.split_once('?').expect("itoa purl has qualifiers");
    assert_eq!(base, "pkg:cargo/itoa@1.0.11");
    let vcs_url = qualifiers
        .split('&')
        .find_map(|q| q.strip_prefix("vcs_url="))
        .expect("vcs_url qualifier");
    assert_eq!(
        vcs_url,
        "git%2Bhttps://github.com/example-org/itoa%4028ef4e3de7adec5dcf50bce2bfc42f4876051666"
    );
    assert_eq!(
        percent_decode(vcs_url),
        "git+https://github.com/example-org/itoa@28ef4e3de7adec5dcf50bce2bfc42f4876051666"
    );
    // It parses with a conforming purl parser.
    let parsed: purl::GenericPurl<String> = purl.parse().expect("purl parses");
    assert_eq!(
        parsed.qualifiers().get("vcs_url"),
        Some("git+https://github.com/example-org/itoa@28ef4e3de7adec5dcf50bce2bfc42f4876051666")
    );
    assert_ne!(itoa["bom-ref"], "pkg:cargo/itoa@1.0.11");
    assert!(itoa.get("hashes").is_none(), "git sources have no checksum");
    assert_eq!(
        itoa["externalReferences"][0],
        serde_json::json!({"type": "vcs", "url": "https://github.com/example-org/itoa"})
    );

    let smallvec = component(&sbom, "smallvec").expect("smallvec listed");
    assert_eq!(smallvec["purl"], "pkg:cargo/smallvec@1.16.6");
    assert_eq!(
        smallvec["hashes"][0]["content"],
        "3244542535d5de959d90ec55d1b5ff0fd2bb7b1310223907d5f11932847f7b59"
    );
}

/// Case 012: build-only pkg-config is `excluded`, itoa (normal and build)
/// `required`, dev-only smallvec absent; the root depends on pkg-config by
/// its bom-ref although `resolve` spells it `pkg_config`.
fn assert_case_012(sbom: &Value) {
    assert_valid_cyclonedx(sbom);
    let itoa = component(sbom, "itoa").expect("itoa listed");
    assert_eq!(itoa["version"], "1.0.19");
    assert_eq!(itoa["scope"], "required");
    let pkg_config = component(sbom, "pkg-config").expect("pkg-config listed");
    assert_eq!(pkg_config["version"], "0.3.34");
    assert_eq!(pkg_config["scope"], "excluded");
    assert!(component(sbom, "smallvec").is_none(), "dev-only is absent");

    let root = &sbom["metadata"]["component"];
    assert_eq!(root["name"], "image-probe");
    let root_deps = depends_on(sbom, str_of(&root["bom-ref"]));
    assert_eq!(
        root_deps,
        [str_of(&itoa["bom-ref"]), str_of(&pkg_config["bom-ref"])]
    );
}

#[test]
fn case_012_build_only_dependency_is_excluded() {
    let report = run_sbom(
        &case("012-sbom-build-only-dependency-scope"),
        "metadata-file = \"cargo-metadata.json\"",
        Some(0),
    );
    assert_case_012(&sbom_of(&report));
}

/// Whether the gate errored only because cargo, run `--offline`, lacked
/// crates it would have to download: the one reason a test may skip.
fn is_offline_miss(report: &GateReport) -> bool {
    let offline = |e: &String| {
        e.contains("cargo metadata") && (e.contains("--offline") || e.contains("download"))
    };
    !report.errors.is_empty() && report.errors.iter().all(offline)
}

/// The same case through real `cargo metadata`, when the registry cache
/// has its three crates.
#[test]
fn case_012_with_real_cargo_metadata() {
    let copy = common::copy_tree(&case("012-sbom-build-only-dependency-scope"));
    let report = run_sbom(copy.path(), "", Some(0));
    if is_offline_miss(&report) {
        println!(
            "skipped: the crates of case 012 are not in the local registry cache: {:?}",
            report.errors
        );
        return;
    }
    assert_case_012(&sbom_of(&report));
}

/// The component set equals cargo-cyclonedx 0.5.9's (`--target all`) on
/// each corpus workspace. The expected sets were produced by
/// `bench/sbom-anchor-components.sh`; needs the crates in the local
/// registry cache (cargo runs `--offline`), skips otherwise.
#[test]
fn component_sets_match_cargo_cyclonedx_on_the_lockfile_corpus() {
    let corpus = common::shared_path("corpus/lockfiles");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom/anchor");
    let mut compared = 0;
    for project in [
        "bat-0.18.0",
        "fd-8.2.1",
        "ripgrep-0.10.0",
        "ripgrep-head",
        "zizmor-1.0.0",
        "zizmor-head",
    ] {
        let copy = common::copy_tree(&corpus.join(project));
        let report = run_sbom(copy.path(), "", Some(0));
        if is_offline_miss(&report) {
            println!(
                "skipped {project}: its crates are not in the local registry cache: {:?}",
                report.errors
            );
            continue;
        }
        let sbom = sbom_of(&report);
        assert_valid_cyclonedx(&sbom);
        let expected: BTreeSet<String> =
            fs::read_to_string(fixtures.join(format!("{project}.txt")))
                .expect("anchor fixture")
                .lines()
                .map(str::to_owned)
                .collect();
        let ours = component_set(&sbom);
        let missing: Vec<_> = expected.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{project}: missing {missing:?}, extra {extra:?}"
        );
        compared += 1;
    }
    println!("compared {compared} corpus workspaces with cargo-cyclonedx");
}

/// A snapshot of every file under `root`: path and content.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = fs::read(&path).unwrap_or_default();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Runs the gate on a copy of case 012 after `damage`, and checks it errors
/// with a message containing each of `expected`, leaving the copy as it
/// was.
fn assert_errors_cleanly(damage: impl FnOnce(&Path), options: &str, expected: &[&str]) {
    let copy = common::copy_tree(&case("012-sbom-build-only-dependency-scope"));
    damage(copy.path());
    let before = tree(copy.path());
    let report = run_sbom(copy.path(), options, Some(0));
    assert_eq!(report.outcome, Outcome::Errored, "{report:?}");
    assert!(report.artifacts.is_empty());
    let message = report.errors.join("\n");
    for text in expected {
        assert!(message.contains(text), "{text:?} not in:\n{message}");
    }
    assert!(message.contains("help:"), "no help line:\n{message}");
    assert!(tree(copy.path()) == before, "the repository was modified");
}

#[test]
fn corrupt_lockfile_errors_with_file_and_line() {
    assert_errors_cleanly(
        |root| {
            let lock = root.join("Cargo.lock");
            let text = fs::read_to_string(&lock).expect("lock");
            let broken = text.replacen("version = \"1.0.19\"", "version = 1.0.19\"", 1);
            fs::write(&lock, broken).expect("write");
        },
        "",
        &["Cargo.lock", "at line 16", "regenerate it"],
    );
}

#[test]
fn truncated_lockfile_errors_with_file_and_line() {
    assert_errors_cleanly(
        |root| {
            let lock = root.join("Cargo.lock");
            let text = fs::read_to_string(&lock).expect("lock");
            let cut = text.find("checksum = \"3bd1").expect("itoa checksum") + 16;
            fs::write(&lock, &text[..cut]).expect("write");
        },
        "",
        &["Cargo.lock", "at line"],
    );
}

/// A lockfile cut at a package boundary no longer resolves: the package
/// that depended on the cut one names a package that is not there.
#[test]
fn lockfile_cut_at_a_package_boundary_errors() {
    assert_errors_cleanly(
        |root| {
            let lock = root.join("Cargo.lock");
            let text = fs::read_to_string(&lock).expect("lock");
            let cut = text
                .find("[[package]]\nname = \"smallvec\"")
                .expect("smallvec");
            fs::write(&lock, &text[..cut]).expect("write");
        },
        "",
        &["Cargo.lock", "smallvec"],
    );
}

/// A lockfile that is well-formed but does not match the manifest (a
/// dependency was added without updating it): cargo refuses it under
/// `--locked`, and the gate says so instead of letting cargo rewrite it.
#[test]
fn stale_lockfile_errors_without_rewriting_it() {
    assert_errors_cleanly(
        |root| {
            let lock = root.join("Cargo.lock");
            let text = fs::read_to_string(&lock).expect("lock");
            let cut = text
                .find("[[package]]\nname = \"smallvec\"")
                .expect("smallvec");
            let stale = text[..cut].replace(" \"smallvec\",\n", "");
            fs::write(&lock, stale).expect("write");
        },
        "",
        &["cargo metadata", "--locked", "cargo update"],
    );
}

#[test]
fn unreadable_lockfile_errors_naming_it() {
    // A directory where the file should be: unreadable even for root.
    assert_errors_cleanly(
        |root| {
            fs::remove_file(root.join("Cargo.lock")).expect("rm");
            fs::create_dir(root.join("Cargo.lock")).expect("mkdir");
        },
        "",
        &["could not read", "Cargo.lock"],
    );
    assert_errors_cleanly(
        |root| fs::write(root.join("Cargo.lock"), b"version = 4\n\xff\xfe").expect("write"),
        "",
        &["Cargo.lock", "UTF-8"],
    );
}

#[test]
fn missing_lockfile_errors_and_is_not_created() {
    assert_errors_cleanly(
        |root| fs::remove_file(root.join("Cargo.lock")).expect("rm"),
        "",
        &["Cargo.lock", "does not exist", "cargo generate-lockfile"],
    );
}

#[test]
fn corrupt_metadata_file_errors_with_file_and_line() {
    assert_errors_cleanly(
        |root| {
            let path = root.join("cargo-metadata.json");
            let text = fs::read_to_string(&path).expect("metadata");
            let broken = text.replacen("\"resolve\"", "\"resolve\" ,,", 1);
            fs::write(&path, broken).expect("write");
        },
        "metadata-file = \"cargo-metadata.json\"",
        &["cargo-metadata.json", "at line"],
    );
}

#[test]
fn metadata_file_that_disagrees_with_the_lockfile_errors() {
    assert_errors_cleanly(
        |root| {
            let lock = root.join("Cargo.lock");
            let text = fs::read_to_string(&lock).expect("lock");
            fs::write(&lock, text.replace("0.3.34", "0.3.33")).expect("write");
        },
        "metadata-file = \"cargo-metadata.json\"",
        &["does not lock", "pkg-config 0.3.34"],
    );
}

#[test]
fn no_cargo_workspace_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = run_sbom(dir.path(), "", None);
    assert_eq!(report.outcome, Outcome::Errored);
    assert!(
        report.errors[0].contains("no Cargo.toml"),
        "{:?}",
        report.errors
    );
}

#[test]
fn empty_workspace_list_is_an_error_not_a_pass() {
    let report = run_sbom(
        &case("012-sbom-build-only-dependency-scope"),
        "workspaces = []",
        None,
    );
    assert_eq!(report.outcome, Outcome::Errored);
    assert!(
        report.errors[0].contains("nothing to describe"),
        "{:?}",
        report.errors
    );
}
