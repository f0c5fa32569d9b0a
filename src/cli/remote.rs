//! Commands that talk to a running server with a key, as an operator or a script would:
//! `keys list|revoke`, `users create`, `conversations create|list`, `send`, `messages list`
//! and `tail`. Each prints what the server answered as JSON, one object per line, in the
//! protobuf JSON mapping grpcurl also uses (from the descriptors; like grpcurl, fields at
//! their default value are left out);
//! `tail` prints one line per event and, resumed with `--after`, continues where it left
//! off. A refused call exits non-zero with the gRPC code and message on stderr.

use std::{io::Write, path::PathBuf};

use clap::{Args, Subcommand};
use futures::StreamExt;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use super::RoleArg;
use crate::api::pb::{
    self, admin_service_client::AdminServiceClient, conversation_service_client::ConversationServiceClient,
    event_service_client::EventServiceClient, message_service_client::MessageServiceClient,
};
use crate::telemetry::error_chain;

/// Where the server is and the key to call it with; every remote command takes these.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's address: http://HOST:PORT, or https://HOST:PORT when it serves TLS.
    #[arg(long, env = "MISSIVE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The API key (or user token) to call with. Prefer the environment variable: a flag's
    /// value shows in the process list and the shell's history.
    // Optional to clap, which would otherwise print it as required in every usage line
    // though the environment usually gives it; `Client::connect` says when neither did.
    #[arg(long, env = "MISSIVE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A PEM file of the CA that signed the server's certificate, for https servers whose
    /// certificate the system does not trust.
    #[arg(long, env = "MISSIVE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// `missive users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (admin key); with --with-key, also a key for it, printed on a second line.
    Create(CreateUserArgs),
}

/// `missive users create` flags.
#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The user's role.
    #[arg(long, value_enum, default_value = "member")]
    pub role: RoleArg,
    /// The name others see.
    #[arg(long)]
    pub display_name: String,
    /// The host product's id for the user.
    #[arg(long, default_value = "")]
    pub external_id: String,
    /// The user's email address.
    #[arg(long, default_value = "")]
    pub email: String,
    /// Also create an API key named this for the user.
    #[arg(long, value_name = "KEY_NAME")]
    pub with_key: Option<String>,
}

/// `missive keys list` flags.
#[derive(Debug, Args)]
pub struct ListKeysArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only this user's keys.
    #[arg(long)]
    pub user: Option<String>,
}

/// `missive keys revoke` flags.
#[derive(Debug, Args)]
pub struct RevokeKeyArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The key's id (key_…), as `keys list` shows it.
    pub key_id: String,
}

/// `missive send` flags.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The conversation (conv_…).
    pub conversation_id: String,
    /// The message's text.
    pub content: String,
    /// A private note, seen by staff only (staff keys).
    #[arg(long)]
    pub private: bool,
}

/// `missive conversations …`
#[derive(Debug, Subcommand)]
pub enum ConversationsCommand {
    /// Create a conversation, for `missive send` to write to.
    ///
    /// Example: `missive conversations create --participant usr_…=seller --subject-kind listing
    /// --subject-id L-1042 --subject-title "2021 Volvo FH 500" --caller-label buyer`.
    Create(CreateConversationArgs),
    /// List the conversations the key may see, newest activity first (every page).
    List(ListConversationsArgs),
}

/// `missive conversations create` flags.
#[derive(Debug, Args)]
pub struct CreateConversationArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// A participant: a user id, with its label (the part it plays) after `=`, as in
    /// `usr_…=seller`. Repeat the flag for several.
    #[arg(long = "participant", value_name = "USER_ID[=LABEL]", value_parser = parse_participant)]
    pub participants: Vec<pb::NewParticipant>,
    /// The caller's label, when a member creates and is added itself.
    #[arg(long, default_value = "")]
    pub caller_label: String,
    /// The kind of thing the conversation is about, e.g. "listing".
    #[arg(long, default_value = "")]
    pub subject_kind: String,
    /// The host product's id of that thing.
    #[arg(long = "subject-id", default_value = "")]
    pub subject_external_id: String,
    /// A title for people, e.g. "2021 Volvo FH 500".
    #[arg(long, default_value = "")]
    pub subject_title: String,
}

impl CreateConversationArgs {
    /// The subject, when any of its flags was given.
    fn subject(&self) -> Option<pb::Subject> {
        let subject = pb::Subject {
            kind: self.subject_kind.clone(),
            external_id: self.subject_external_id.clone(),
            title: self.subject_title.clone(),
            ..Default::default()
        };
        (subject != pb::Subject::default()).then_some(subject)
    }
}

/// `USER_ID[=LABEL]` as a participant. The server checks the id and the label.
fn parse_participant(value: &str) -> Result<pb::NewParticipant, String> {
    let (user_id, label) = value.split_once('=').unwrap_or((value, ""));
    if user_id.is_empty() {
        return Err("a participant is a user id, with its label after `=` (usr_…=seller)".into());
    }
    Ok(pb::NewParticipant { user_id: user_id.to_owned(), label: label.to_owned() })
}

/// `missive conversations list` flags.
#[derive(Debug, Args)]
pub struct ListConversationsArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Stop after this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `missive messages …`
#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List a conversation's messages, oldest first (every page).
    List(ListMessagesArgs),
}

/// `missive messages list` flags.
#[derive(Debug, Args)]
pub struct ListMessagesArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The conversation (conv_…).
    pub conversation_id: String,
    /// Stop after this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `missive tail` flags.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Resume after this cursor (an event's `cursor`); without it, from now. A cursor may
    /// begin with a hyphen (it is base64url): it is taken as the value all the same.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub after: String,
    /// Only events of these conversations (repeat the flag for several).
    #[arg(long = "conversation")]
    pub conversations: Vec<String>,
    /// Also print heartbeats (they carry the cursor to resume from when nothing happens).
    #[arg(long)]
    pub heartbeats: bool,
}

/// A connected client: the channel, the key, and the descriptors that print answers.
struct Client {
    channel: Channel,
    key: MetadataValue<tonic::metadata::Ascii>,
    descriptors: DescriptorPool,
}

impl Client {
    async fn connect(connection: &Connection) -> Result<Self, String> {
        let server = connection.server.as_str();
        if !server.starts_with("http://") && !server.starts_with("https://") {
            return Err(format!(
                "--server: {server:?} needs its scheme: http://HOST:PORT, or https://HOST:PORT for TLS"
            ));
        }
        if connection.ca_cert.is_some() && server.starts_with("http://") {
            return Err("--ca-cert is for https:// servers; this one is http://".into());
        }
        let key = connection.key.as_deref().unwrap_or_default().trim();
        if key.is_empty() {
            return Err("no key: pass --key or set MISSIVE_KEY".into());
        }
        let mut endpoint = Endpoint::from_shared(server.to_owned()).map_err(|err| format!("--server: {err}"))?;
        if server.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &connection.ca_cert {
                let pem = std::fs::read(path).map_err(|err| format!("--ca-cert {}: {err}", path.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|err| format!("--ca-cert: {err}"))?;
        }
        let channel =
            endpoint.connect().await.map_err(|err| format!("cannot reach {server}: {}", error_chain(&err)))?;
        let key = format!("Bearer {key}")
            .parse()
            .map_err(|_| "the key (--key or MISSIVE_KEY) must be printable ASCII".to_owned())?;
        let descriptors = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).map_err(|err| err.to_string())?;
        Ok(Self { channel, key, descriptors })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert("authorization", self.key.clone());
        request
    }

    /// Prints `message`, of the protobuf type `name` (`ApiKey`), as one line of JSON.
    fn print<M: Message>(&self, name: &str, message: &M) -> Result<(), String> {
        let full_name = format!("missive.v1.{name}");
        let descriptor =
            self.descriptors.get_message_by_name(&full_name).ok_or_else(|| format!("no descriptor for {full_name}"))?;
        let dynamic =
            DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).map_err(|err| err.to_string())?;
        let line = serde_json::to_string(&dynamic).map_err(|err| err.to_string())?;
        match writeln!(std::io::stdout().lock(), "{line}") {
            Ok(()) => Ok(()),
            // The reader has gone (`| head -1`): nothing more is wanted, which is no error.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(err) => Err(format!("cannot write to stdout: {err}")),
        }
    }
}

/// A refused call, for stderr: its code and message, or what the transport says when
/// there is no message (a plaintext client at a TLS port, say), with a hint when it was
/// not Missive that answered.
fn refused(status: Status) -> String {
    let said = match status.message() {
        "" | "transport error" => format!("{:?}: {}", status.code(), error_chain(&status)),
        message => format!("{:?}: {message}", status.code()),
    };
    // Every status Missive sends carries an ErrorInfo; one without came from the transport,
    // such as a plaintext client at a TLS port ("h2 protocol error", "operation was canceled").
    if status.details().is_empty() {
        format!("{said} (no answer from Missive: check --server; a TLS server takes https://HOST:PORT)")
    } else {
        said
    }
}

/// `missive keys list`
pub async fn list_keys(args: ListKeysArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let admin = AdminServiceClient::new(client.channel.clone());
    let user_id = args.user.unwrap_or_default();
    print_pages(&client, "ApiKey", usize::MAX, |page_token| {
        let mut admin = admin.clone();
        let request = client.request(pb::ListApiKeysRequest { user_id: user_id.clone(), page_size: 1000, page_token });
        async move {
            let page = admin.list_api_keys(request).await?.into_inner();
            Ok((page.api_keys, page.next_page_token))
        }
    })
    .await
}

/// `missive keys revoke`
pub async fn revoke_key(args: RevokeKeyArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let request = client.request(pb::RevokeApiKeyRequest { id: args.key_id });
    let key = AdminServiceClient::new(client.channel.clone()).revoke_api_key(request).await.map_err(refused)?;
    client.print("ApiKey", key.get_ref())
}

/// `missive users create`
pub async fn create_user(args: CreateUserArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let mut admin = AdminServiceClient::new(client.channel.clone());
    let user = pb::User {
        role: pb::Role::from(crate::domain::users::Role::from(args.role)) as i32,
        display_name: args.display_name,
        external_id: args.external_id,
        email: args.email,
        ..Default::default()
    };
    let request = client.request(pb::CreateUserRequest { user: Some(user), request_id: String::new() });
    let user = admin.create_user(request).await.map_err(refused)?.into_inner();
    client.print("User", &user)?;
    if let Some(name) = args.with_key {
        let request = client.request(pb::CreateApiKeyRequest { user_id: user.id, name });
        client.print("CreateApiKeyResponse", admin.create_api_key(request).await.map_err(refused)?.get_ref())?;
    }
    Ok(())
}

/// `missive send`
pub async fn send(args: SendArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let request = client.request(pb::SendMessageRequest {
        conversation_id: args.conversation_id,
        content: args.content,
        private: args.private,
        ..Default::default()
    });
    let message = MessageServiceClient::new(client.channel.clone()).send_message(request).await.map_err(refused)?;
    client.print("Message", message.get_ref())
}

/// `missive conversations create`: prints what the server answered, the conversation (as
/// `{"conversation": …}`, like grpcurl).
pub async fn create_conversation(args: CreateConversationArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let request = client.request(pb::CreateConversationRequest {
        subject: args.subject(),
        participants: args.participants,
        caller_label: args.caller_label,
        ..Default::default()
    });
    let created =
        ConversationServiceClient::new(client.channel.clone()).create_conversation(request).await.map_err(refused)?;
    client.print("CreateConversationResponse", &created.into_inner())
}

/// `missive conversations list`
pub async fn list_conversations(args: ListConversationsArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let conversations = ConversationServiceClient::new(client.channel.clone());
    print_pages(&client, "Conversation", args.limit, |page_token| {
        let mut conversations = conversations.clone();
        let request = client.request(pb::ListConversationsRequest { page_size: 100, page_token, ..Default::default() });
        async move {
            let page = conversations.list_conversations(request).await?.into_inner();
            Ok((page.conversations, page.next_page_token))
        }
    })
    .await
}

/// `missive messages list`
pub async fn list_messages(args: ListMessagesArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let messages = MessageServiceClient::new(client.channel.clone());
    print_pages(&client, "Message", args.limit, |page_token| {
        let mut messages = messages.clone();
        let request = client.request(pb::ListMessagesRequest {
            conversation_id: args.conversation_id.clone(),
            page_size: 100,
            page_token,
            ..Default::default()
        });
        async move {
            let page = messages.list_messages(request).await?.into_inner();
            Ok((page.messages, page.next_page_token))
        }
    })
    .await
}

/// Prints the items of a listing, page after page, up to `limit`: `fetch` asks for the page
/// at a token and answers its items (of protobuf type `name`) and the next page's token.
async fn print_pages<T, F, Page>(client: &Client, name: &str, limit: usize, mut fetch: F) -> Result<(), String>
where
    T: Message,
    F: FnMut(String) -> Page,
    Page: std::future::Future<Output = Result<(Vec<T>, String), Status>>,
{
    let (mut printed, mut page_token) = (0, String::new());
    while printed < limit {
        let (items, next_page_token) = fetch(page_token).await.map_err(refused)?;
        for item in items.iter().take(limit - printed) {
            client.print(name, item)?;
            printed += 1;
        }
        if next_page_token.is_empty() {
            break;
        }
        page_token = next_page_token;
    }
    Ok(())
}

/// `missive tail`: until the stream ends (the server stops, the key is revoked) or the
/// process is interrupted.
pub async fn tail(args: TailArgs) -> Result<(), String> {
    let client = Client::connect(&args.connection).await?;
    let request = client.request(pb::SubscribeRequest {
        after: args.after.clone(),
        conversation_ids: args.conversations,
        ..Default::default()
    });
    let mut events =
        EventServiceClient::new(client.channel.clone()).subscribe(request).await.map_err(refused)?.into_inner();
    let mut position = args.after;
    while let Some(event) = events.next().await {
        let event = event.map_err(|status| format!("{}; resume with --after {position:?}", refused(status)))?;
        if args.heartbeats || event.r#type != pb::EventType::Heartbeat as i32 {
            client.print("Event", &event)?;
        }
        position = event.cursor;
    }
    // A stream only ends when the server stops or closes the connection: say where to go on.
    Err(format!("the server ended the stream; resume with --after {position:?}"))
}
