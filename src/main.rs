//! The `missive` binary: parses the command line and runs the server or a command.

use std::process::ExitCode;

use clap::Parser;
use missive::{
    cli::{Cli, Command, KeysCommand},
    config::Config,
    server::Application,
    shutdown,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Keys(KeysCommand::Create(args))) => {
            missive::telemetry::init("warn");
            missive::cli::create_key(args).await.map(|key| println!("{key}")).map_err(|err| err.to_string())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("missive: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    missive::telemetry::init("info,sqlx=warn,sea_orm=warn");
    let stop = shutdown::signal();
    let app = Application::build(config).await.map_err(|err| err.to_string())?;
    app.run_until(stop).await.map_err(|err| err.to_string())
}
