//! Argument parsing. `pipeline` and the helper commands are fixed; one
//! subcommand per gate is added from the library's registry, so adding a
//! gate never touches the command line.

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, ValueEnum};
use portcullis::report::Format;

// Options every run (`pipeline` and each gate) takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The repository to scan
    #[arg(long, value_name = "DIR", default_value = ".", help_heading = "Input")]
    pub(crate) root: PathBuf,

    /// The policy file [default: portcullis.toml, .portcullis.toml,
    /// .github/portcullis.toml or policies/portcullis.toml under --root,
    /// else the built-in policy]
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub(crate) policy: Option<PathBuf>,

    /// Override one policy value, e.g. `--set pipeline.threshold=high` or
    /// `--set gates.secrets.mode=history` (repeatable)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Input")]
    pub(crate) set: Vec<String>,

    /// A RustSec advisory database checkout to use instead of fetching one
    #[arg(
        long,
        value_name = "PATH",
        env = "PORTCULLIS_ADVISORY_DB",
        help_heading = "Input"
    )]
    pub(crate) advisory_db: Option<PathBuf>,

    /// Use no network: never fetch the advisory database
    #[arg(long, help_heading = "Input")]
    pub(crate) offline: bool,

    /// A previous report.json: findings already in it do not fail the run
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub(crate) baseline: Option<PathBuf>,

    /// Run only these gates of the pipeline (repeatable)
    #[arg(long, value_name = "GATE", help_heading = "Selection")]
    pub(crate) only: Vec<String>,

    /// Leave these gates out (repeatable)
    #[arg(long, value_name = "GATE", help_heading = "Selection")]
    pub(crate) skip: Vec<String>,

    /// Write report.json, results.sarif, summary.md, junit.xml and the
    /// gates' artifacts (the SBOM) into this folder
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub(crate) out: Option<PathBuf>,

    /// What to print on stdout
    #[arg(long, value_enum, default_value_t = OutputFormat::Terminal, help_heading = "Output")]
    pub(crate) format: OutputFormat,

    /// List every finding, also those below the threshold or suppressed
    #[arg(long, help_heading = "Output")]
    pub(crate) all_findings: bool,

    /// When to use colour
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, help_heading = "Output")]
    pub(crate) color: ColorChoice,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub(crate) verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, help_heading = "Output")]
    pub(crate) quiet: bool,

    /// Pretend today is this date (waiver expiry, database age); for tests
    #[arg(long, value_name = "YYYY-MM-DD", hide = true)]
    pub(crate) today: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Terminal,
    Json,
    Sarif,
    Markdown,
    Junit,
    Github,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Terminal => Format::Terminal,
            OutputFormat::Json => Format::Json,
            OutputFormat::Sarif => Format::Sarif,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Junit => Format::Junit,
            OutputFormat::Github => Format::Github,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// What the user asked for.
#[derive(Debug)]
pub(crate) enum Command {
    /// `pipeline` (gates: None) or one gate.
    Run {
        gates: Option<Vec<String>>,
        args: RunArgs,
    },
    Gates,
    PolicyCheck {
        root: PathBuf,
        policy: Option<PathBuf>,
    },
    PolicyDefault,
    Bench {
        gate: String,
        extra: Vec<String>,
    },
}

const ABOUT: &str = "Portcullis: a supply-chain security pipeline for Rust repositories";

const LONG_ABOUT: &str = "\
Portcullis runs ordered gates over a repository — lint, tests, SCA against the
RustSec advisory database, SBOM generation and more — and gives one verdict
plus the reports people and GitHub read.

Start with `cargo xtask pipeline`. Each gate also has its own subcommand.";

const AFTER_HELP: &str = "\
Exit codes: 0 passed, 1 failed on findings, 2 usage or configuration error,
3 a gate could not run (the result is incomplete).

Examples:
  cargo xtask pipeline                              all gates on this repository
  cargo xtask sca --root ../other --offline         one gate on another repository
  cargo xtask pipeline --out portcullis-out         also write every report and the SBOM
  cargo xtask gates                                 list the gates";

/// The whole command line, with one subcommand per registered gate.
pub(crate) fn build() -> clap::Command {
    let mut command = clap::Command::new("portcullis")
        .bin_name("cargo xtask")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(RunArgs::augment_args(clap::Command::new("pipeline").about(
            "Run every gate in the policy's stages and give one verdict",
        )));
    for gate in portcullis::gates::registry() {
        command = command.subcommand(RunArgs::augment_args(clap::Command::new(gate.id()).about(
            format!("Run the {} gate: {}", gate.id(), gate.description()),
        )));
    }
    command
        .subcommand(clap::Command::new("gates").about("List the gates and what each checks"))
        .subcommand(
            clap::Command::new("policy")
                .about("Check a policy file, or print the built-in one")
                .subcommand_required(true)
                .subcommand(
                    clap::Command::new("check")
                        .about("Validate the policy that a run would use")
                        .arg(
                            clap::arg!(--root <DIR> "The repository")
                                .value_parser(clap::value_parser!(PathBuf))
                                .default_value("."),
                        )
                        .arg(
                            clap::arg!(--policy <FILE> "The policy file")
                                .value_parser(clap::value_parser!(PathBuf))
                                .required(false),
                        ),
                )
                .subcommand(
                    clap::Command::new("default")
                        .about("Print the built-in policy, to start your own"),
                ),
        )
        .subcommand(
            clap::Command::new("bench")
                .about("Time a gate against its anchor tool (runs bench/<gate>.sh)")
                .arg(clap::arg!(<GATE> "The gate to benchmark"))
                .arg(clap::arg!([ARGS] ... "Passed to the script").trailing_var_arg(true)),
        )
}

impl Command {
    pub(crate) fn from_matches(matches: &ArgMatches) -> Result<Command, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        match name {
            "pipeline" => Ok(Command::Run {
                gates: None,
                args: RunArgs::from_arg_matches(sub)?,
            }),
            "gates" => Ok(Command::Gates),
            "policy" => match sub.subcommand() {
                Some(("check", check)) => Ok(Command::PolicyCheck {
                    root: check
                        .get_one::<PathBuf>("root")
                        .cloned()
                        .unwrap_or_else(|| PathBuf::from(".")),
                    policy: check.get_one::<PathBuf>("policy").cloned(),
                }),
                _ => Ok(Command::PolicyDefault),
            },
            "bench" => Ok(Command::Bench {
                gate: sub.get_one::<String>("GATE").cloned().unwrap_or_default(),
                extra: sub
                    .get_many::<String>("ARGS")
                    .map(|values| values.cloned().collect())
                    .unwrap_or_default(),
            }),
            gate => Ok(Command::Run {
                gates: Some(vec![gate.to_owned()]),
                args: RunArgs::from_arg_matches(sub)?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_well_formed() {
        super::build().debug_assert();
    }
}
