//! `vigil`: run the pipeline on saved events, offline, and operate a deployment.
//!
//! - `replay EVENT`: intake -> enrich (from `--trail` files) -> classify -> route -> render.
//! - `routes test EVENT`: which route an event takes, and why.
//! - `silence add|list|expire`: the silences in the noise-control table.
//! - `ledger`: what became of each alert, from the decision ledger.
//! - `redrive`: the dead-letter queue, read (dry run) or re-sent to the function (`--send`).
//!
//! Exit status: 0 the event was understood (or the command did everything asked); 2 it was
//! refused (bad input: the reason is JSON on stdout with `replay --format json`, words on
//! stderr otherwise); 1 vigil itself could not run (an unreadable or invalid owners, rules or
//! trail file, an AWS call that failed) or, for `redrive`, a message was not understood or
//! could not be re-sent.

mod common;
mod files;
mod ledger;
mod redrive;
mod replay;
mod silence;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "Alarm-and-response for AI workloads on AWS: replay events offline, manage silences, read the ledger, redrive dead letters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on a saved event and print what the owner would see.
    Replay(replay::ReplayArgs),
    /// Routing commands.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Silences (kept in the noise-control table, VIGIL_TABLE_NAME or --table).
    Silence {
        #[command(subcommand)]
        command: silence::SilenceCommand,
    },
    /// Print the decision ledger: what became of each alert, and why.
    Ledger(ledger::LedgerArgs),
    /// Read the dead-letter queue; with --send, re-invoke the function with each event.
    Redrive(redrive::RedriveArgs),
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Print which route an event takes and why.
    Test(RoutesTestArgs),
}

#[derive(Debug, Args)]
struct RoutesTestArgs {
    /// The event file (any accepted input).
    event: PathBuf,
    /// Owners file (YAML).
    #[arg(long)]
    owners: Option<PathBuf>,
    /// CloudTrail context (file or folder), used when a route matches on kind.
    #[arg(long)]
    trail: Vec<PathBuf>,
}

/// Output formats of `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Slack,
    Sns,
    /// Amazon Q Developer in chat applications custom notification.
    Chatbot,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => replay::run(&args),
        Command::Routes {
            command: RoutesCommand::Test(args),
        } => replay::routes_test(&args.event, args.owners.as_deref(), &args.trail),
        Command::Silence { command } => silence::run(&command),
        Command::Ledger(args) => ledger::run(&args),
        Command::Redrive(args) => redrive::run(&args),
    }
}
