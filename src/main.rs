//! The `missive` binary: parses the command line and runs the server or a command.

use std::process::ExitCode;

use clap::Parser;
use missive::{
    cli::{
        AccountsCommand, Cli, Command, KeysCommand,
        remote::{self, ConversationsCommand, MessagesCommand, UsersCommand},
    },
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
        Some(Command::Keys(KeysCommand::List(args))) => remote::list_keys(args).await,
        Some(Command::Keys(KeysCommand::Revoke(args))) => remote::revoke_key(args).await,
        Some(Command::Users(UsersCommand::Create(args))) => remote::create_user(args).await,
        Some(Command::Send(args)) => remote::send(args).await,
        Some(Command::Conversations(ConversationsCommand::Create(args))) => remote::create_conversation(args).await,
        Some(Command::Conversations(ConversationsCommand::List(args))) => remote::list_conversations(args).await,
        Some(Command::Messages(MessagesCommand::List(args))) => remote::list_messages(args).await,
        Some(Command::Tail(args)) => remote::tail(args).await,
        Some(Command::Accounts(AccountsCommand::SearchLanguage(args))) => {
            missive::telemetry::init("warn");
            missive::cli::set_search_language(args).await.map(|said| eprintln!("{said}")).map_err(|err| err.to_string())
        }
        Some(Command::Backup(args)) => {
            missive::telemetry::init("warn");
            missive::cli::backup(args).await.map(|made| eprintln!("{made}")).map_err(|err| err.to_string())
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
