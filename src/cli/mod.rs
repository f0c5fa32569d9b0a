//! The command line: `missive [serve]` runs the server with a [`Config`]; `missive keys
//! create` bootstraps a user with an API key straight in the database (the way to get the
//! first admin key); the other commands talk to a running server with a key ([`remote`]).

pub mod remote;

use clap::{Args, Parser, Subcommand};

use crate::{
    config::{Config, DEFAULT_DATABASE_URL, parse_database_url},
    domain::{
        Error,
        users::{NewUser, Role},
    },
    store::{Store, accounts, api_keys, users},
};

/// Missive: a gRPC messaging service with a gap-free event stream.
#[derive(Debug, Parser)]
#[command(name = "missive", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; nothing means serve.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `missive` alone serves, with these flags.
    #[command(flatten)]
    pub serve: Config,
}

/// The commands.
// Parsed once at start: the size of the largest variant (the server's config) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve(Config),
    /// API keys: create one in the database (the first admin key), or list and revoke them
    /// on a running server.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Accounts (tenants) in the database.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Users of a running server's account.
    #[command(subcommand)]
    Users(remote::UsersCommand),
    /// Send a text message to a conversation on a running server.
    Send(remote::SendArgs),
    /// Conversations on a running server.
    #[command(subcommand)]
    Conversations(remote::ConversationsCommand),
    /// Messages on a running server.
    #[command(subcommand)]
    Messages(remote::MessagesCommand),
    /// Follow the event stream of a running server: one JSON line per event.
    Tail(remote::TailArgs),
    /// Copy the SQLite database to a new file while servers keep using it.
    ///
    /// The copy is a consistent snapshot (writes go on meanwhile), checked and flushed to
    /// disk before it gets its name. Restore: stop every server on the database, delete its
    /// `-wal` and `-shm` files, put the backup in its place, start. On PostgreSQL use
    /// pg_dump or point-in-time recovery.
    Backup(BackupArgs),
}

/// `missive backup` flags.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist.
    pub path: std::path::PathBuf,
    /// Database URL (as for `serve`).
    #[arg(long, env = "MISSIVE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: String,
}

/// Backs up the database as `args` say; the line to print about it.
pub async fn backup(args: BackupArgs) -> Result<String, Error> {
    let made = crate::store::backup::backup(&args.database_url, &args.path).await?;
    Ok(format!("backed up {} to {} ({} bytes)", args.database_url, made.path.display(), made.bytes))
}

/// `missive keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a user with a new API key and print only the key on stdout.
    ///
    /// The user goes into the account named by --account; without it, into the database's
    /// only account, which is created when the database has none. --new-account starts
    /// another account (tenant). Example: `missive keys create --role admin`.
    Create(CreateKeyArgs),
    /// List the account's API keys on a running server (admin key), one JSON line each.
    List(remote::ListKeysArgs),
    /// Revoke an API key on a running server (admin key).
    Revoke(remote::RevokeKeyArgs),
}

/// `missive keys create` flags.
#[derive(Debug, Clone, Args)]
pub struct CreateKeyArgs {
    /// The new user's role.
    #[arg(long, value_enum, default_value = "admin")]
    pub role: RoleArg,
    /// The account (acc_…) to create the user in.
    #[arg(long, conflicts_with = "new_account")]
    pub account: Option<String>,
    /// Create a new account (tenant) for the user, even when the database has others.
    #[arg(long)]
    pub new_account: bool,
    /// The name of an account this command creates.
    #[arg(long, default_value = "default")]
    pub account_name: String,
    /// The new user's display name [default: the role, e.g. "Admin"].
    #[arg(long)]
    pub display_name: Option<String>,
    /// A label for the key, e.g. "bootstrap".
    #[arg(long, default_value = "bootstrap")]
    pub key_name: String,
    /// Database URL (as for `serve`).
    #[arg(long, env = "MISSIVE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: String,
}

/// `missive accounts …`
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Set the language an account's messages are searched in, and re-index them.
    ///
    /// On PostgreSQL, one of its text search configurations (`english`, `french`, …:
    /// words are stemmed, so "running" finds "run"), or `simple` (the default: words
    /// lower-cased, any language alike). SQLite searches every account alike (`simple`).
    /// Example: `missive accounts search-language english`.
    SearchLanguage(SearchLanguageArgs),
}

/// `missive accounts search-language` flags.
#[derive(Debug, Clone, Args)]
pub struct SearchLanguageArgs {
    /// The language, e.g. english.
    pub language: String,
    /// The account (acc_…) [default: the database's only account].
    #[arg(long)]
    pub account: Option<String>,
    /// Database URL (as for `serve`).
    #[arg(long, env = "MISSIVE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: String,
}

/// Sets an account's search language as `args` say; the line to print about it.
pub async fn set_search_language(args: SearchLanguageArgs) -> Result<String, Error> {
    let store = Store::open(&args.database_url).await?;
    let account_id = match args.account {
        Some(account_id) => account_id,
        None => match accounts::ids(&store, 2).await?.as_slice() {
            [only] => only.clone(),
            _ => return Err(Error::invalid("--account", "name the account: the database has none or several")),
        },
    };
    accounts::set_search_language(&store, &account_id, &args.language).await?;
    store.close().await;
    Ok(format!("account {account_id} is searched in {}; its messages are re-indexed", args.language.trim()))
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Staff that manages users and keys.
    Admin,
    /// Staff.
    Agent,
    /// An end user.
    Member,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Agent => Role::Agent,
            RoleArg::Member => Role::Member,
        }
    }
}

/// Creates a user with a key and returns the plain key (the caller prints it).
pub async fn create_key(args: CreateKeyArgs) -> Result<String, Error> {
    let store = Store::open(&args.database_url).await?;
    let account_id = target_account(&store, &args).await?;
    let role = Role::from(args.role);
    let display_name = args.display_name.unwrap_or_else(|| {
        let name = role.as_str();
        name[..1].to_uppercase() + &name[1..]
    });
    let new = NewUser::parse(Some(role), display_name, String::new(), String::new(), String::new())?;
    let user = users::create_in(&store, &account_id, new).await?;
    let created = api_keys::create_in(&store, &account_id, &user.id, &args.key_name).await?;
    eprintln!("account {account_id}, user {} ({}), key {}", user.id, role.as_str(), created.key.id);
    store.close().await;
    Ok(created.secret)
}

/// The account named, a new one, or the database's only one (made when there is none).
async fn target_account(store: &Store, args: &CreateKeyArgs) -> Result<String, Error> {
    match &args.account {
        None if args.new_account => accounts::create(store, &args.account_name).await,
        Some(account_id) if accounts::exists(store, account_id).await? => Ok(account_id.clone()),
        Some(account_id) => Err(Error::invalid("--account", format!("no account {account_id} in this database"))),
        None => match accounts::ids(store, 2).await?.as_slice() {
            [] => accounts::create(store, &args.account_name).await,
            [only] => Ok(only.clone()),
            _ => Err(Error::invalid(
                "--account",
                "the database has several accounts: name one with --account, or pass --new-account",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_the_default_config() {
        let cli = Cli::try_parse_from(["missive"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve, Config::default(), "the flags' defaults are Config::default()");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = Cli::try_parse_from(["missive", "--listen", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("--listen"), "{err}");
        let err = Cli::try_parse_from(["missive", "--database-url", "mysql://x"]).unwrap_err().to_string();
        assert!(err.contains("--database-url"), "{err}");
        let err = Cli::try_parse_from(["missive", "serve", "--heartbeat-interval", "0s"]).unwrap_err().to_string();
        assert!(err.contains("--heartbeat-interval"), "{err}");
    }

    #[test]
    fn usage_lines_do_not_ask_for_what_the_environment_or_a_default_gives() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let send = cli.find_subcommand_mut("send").unwrap();
        let usage = send.render_usage().to_string();
        assert_eq!(usage, "Usage: send [OPTIONS] <CONVERSATION_ID> <CONTENT>", "--key and --server are options");
    }

    #[test]
    fn participants_are_user_ids_with_their_labels() {
        let cli = Cli::try_parse_from([
            "missive",
            "conversations",
            "create",
            "--participant",
            "usr_1=seller",
            "--participant",
            "usr_2",
            "--subject-id",
            "L-1",
        ])
        .unwrap();
        let Some(Command::Conversations(remote::ConversationsCommand::Create(args))) = cli.command else {
            panic!("conversations create")
        };
        let participants: Vec<_> = args.participants.iter().map(|p| (p.user_id.as_str(), p.label.as_str())).collect();
        assert_eq!(participants, [("usr_1", "seller"), ("usr_2", "")]);
        let err = Cli::try_parse_from(["missive", "conversations", "create", "--participant", "=seller"]).unwrap_err();
        assert!(err.to_string().contains("a participant is a user id"), "{err}");
    }

    #[test]
    fn a_cursor_beginning_with_a_hyphen_is_a_cursor() {
        // Cursors are base64url: one in 64 begins with '-'.
        let cli = Cli::try_parse_from(["missive", "tail", "--key", "k", "--after", "-3abc"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Tail(tail)) if tail.after == "-3abc"));
    }
}
