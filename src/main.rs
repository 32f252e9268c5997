//! The `peerlink` command.

use clap::{Parser, Subcommand};
use peerlink::config::ServeArgs;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "peerlink",
    version,
    about = "Real-time chat and file transfer over WebSocket"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (settings from PEERLINK_* variables or the flags below).
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.command {
        Command::Serve(args) => {
            let config = match args.check() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("peerlink: {e}");
                    return ExitCode::from(2);
                }
            };
            // Test-only fault injection; deliberately not a flag so it cannot be set by accident.
            let faults = std::env::var("PEERLINK_FAULTS").is_ok_and(|v| v == "1");
            let result =
                actix_web::rt::System::new().block_on(peerlink::node::serve(config, faults));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("peerlink: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
