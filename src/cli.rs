//! Command-line tasks besides serving: the bootstrap of API keys.

use crate::{
    config::{CreateKeyArgs, RoleArg},
    domain::{
        Error,
        users::{NewUser, Role},
    },
    events::Hub,
    store::Store,
};

/// Creates a user with a key and returns the plain key (the caller prints it).
pub async fn create_key(args: CreateKeyArgs) -> Result<String, Error> {
    let store = Store::open(&args.database_url, Hub::new()).await?;
    let account_id = match &args.account {
        None if args.new_account => store.create_account(&args.account_name).await?,
        Some(account_id) => {
            if !store.account_exists(account_id).await? {
                return Err(Error::invalid("--account", format!("no account {account_id} in this database")));
            }
            account_id.clone()
        }
        None => match store.account_ids(2).await?.as_slice() {
            [] => store.create_account(&args.account_name).await?,
            [only] => only.clone(),
            _ => {
                return Err(Error::invalid(
                    "--account",
                    "the database has several accounts: name one with --account, or pass --new-account",
                ));
            }
        },
    };
    let role = match args.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Agent => Role::Agent,
        RoleArg::Member => Role::Member,
    };
    let display_name = args.display_name.unwrap_or_else(|| {
        let name = role.as_str();
        name[..1].to_uppercase() + &name[1..]
    });
    let new = NewUser::parse(Some(role), display_name, String::new(), String::new(), String::new())?;
    let user = store.create_user_in(&account_id, new).await?;
    let (key, secret) = store.create_api_key_in(&account_id, &user.id, &args.key_name).await?;
    eprintln!("account {account_id}, user {} ({}), key {}", user.id, role.as_str(), key.id);
    store.close().await;
    Ok(secret)
}
