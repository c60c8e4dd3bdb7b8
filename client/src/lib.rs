//! The terminal client of QueryGPT-rs: `login`, `logout`, `ask`, `conversations`, `models` and `connections`,
//! as subcommands of the `querygpt` binary.
//!
//! It uses only the public HTTP API (`/api/v1`, the QueryGPT v2 document) and none of the server's crates: what
//! it can do, any client can. The flow: [`credentials`] keeps the session, [`auth`] turns it into an access
//! token, [`api`] makes the calls, [`sse`] reads a question's event stream, [`ask`] drives a question and
//! [`render`] shows the results.

pub mod api;
pub mod ask;
pub mod auth;
pub mod credentials;
pub mod error;
pub mod render;
pub mod resolve;
pub mod sse;

use crate::ask::{Interrupt, print_line};
use crate::credentials::Store;
use crate::error::{ClientError, Result};
use serde_json::Value;

/// The client's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Logs in to a QueryGPT server; the session is kept in your configuration directory (file mode 0600).
    Login {
        /// The server, e.g. http://127.0.0.1:8000.
        #[arg(long, env = "QUERYGPT_SERVER")]
        server: String,
        /// The account's e-mail address (asked when not given).
        #[arg(long, visible_alias = "email")]
        username: Option<String>,
        /// Read the password from the first line of standard input instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Ends the session on the server and deletes the stored credentials.
    Logout,
    /// Asks a question in plain language; shows the SQL, the result and the explanation. Ctrl-C stops it.
    Ask {
        /// The question.
        question: String,
        /// The database connection (name or id; default: your default connection).
        #[arg(long)]
        connection: Option<String>,
        /// The model (name, id or provider model name; default: your default model).
        #[arg(long)]
        model: Option<String>,
        /// Continue this conversation (its id).
        #[arg(long)]
        conversation: Option<String>,
        /// Language of the answer: zh or en (default: your setting).
        #[arg(long)]
        language: Option<String>,
        /// Print each event of the stream as one JSON line, and nothing else, on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Lists your conversations, most recent first.
    Conversations {
        /// How many (1-200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only favourites.
        #[arg(long)]
        favorites: bool,
        /// Only conversations whose title or messages contain this text.
        #[arg(long, short = 'q')]
        search: Option<String>,
        /// Print the API's list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists your models.
    Models {
        /// Print the API's list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists your database connections.
    Connections {
        /// Print the API's list as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a client command to its end and returns the process exit status; errors are reported on stderr, one
/// line each.
pub fn run(command: Command) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return 1;
        }
    };
    let outcome = runtime.block_on(execute(command));
    // Nothing may outlive the command (an abandoned request is simply dropped).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match outcome {
        Ok(()) => 0,
        Err(e @ ClientError::Interrupted(_)) => {
            eprintln!("{e}");
            e.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Runs a client command.
pub async fn execute(command: Command) -> Result<()> {
    let store = Store::locate()?;
    match command {
        Command::Login { server, username, password_stdin } => {
            let source = if password_stdin { auth::PasswordSource::Stdin } else { auth::PasswordSource::Prompt };
            let credentials = auth::login(&store, &server, username, source).await?;
            print_line(&format!(
                "Logged in to {} as {}. The session is kept in {}.",
                credentials.server,
                credentials.email,
                store.path().display()
            ))
        }
        Command::Logout => {
            let _interrupt = Interrupt::listen()?;
            let told = auth::logout(&store).await?;
            print_line(if told { "Logged out." } else { "The session had ended already; credentials deleted." })
        }
        Command::Ask { question, connection, model, conversation, language, json } => {
            let (api, interrupt) = authenticated(&store).await?;
            let question = ask::Question { text: question, connection, model, conversation, language, json };
            ask::ask(&api, question, interrupt).await
        }
        Command::Conversations { limit, favorites, search, json } => {
            let (api, mut interrupt) = authenticated(&store).await?;
            let query = api::ConversationQuery { limit: Some(limit), favorites, search };
            let page = interrupt.or(api.conversations(&query)).await?;
            if json { print_json(&page.raw) } else { print_line(&render::conversations(&page)) }
        }
        Command::Models { json } => {
            let (api, mut interrupt) = authenticated(&store).await?;
            let (raw, models) = interrupt.or(api.models()).await?;
            if json { print_json(&raw) } else { print_line(&render::models(&models)) }
        }
        Command::Connections { json } => {
            let (api, mut interrupt) = authenticated(&store).await?;
            let (raw, connections) = interrupt.or(api.connections()).await?;
            if json { print_json(&raw) } else { print_line(&render::connections(&connections)) }
        }
    }
}

/// The stored session, authenticated, and Ctrl-C caught from before the refresh on: an interrupt cannot lose the
/// new refresh token between the server's answer and the file (it is seen once the token is stored).
async fn authenticated(store: &Store) -> Result<(api::Api, Interrupt)> {
    let interrupt = Interrupt::listen()?;
    let (api, _) = auth::session(store).await?;
    Ok((api, interrupt))
}

fn print_json(items: &[Value]) -> Result<()> {
    let text = serde_json::to_string_pretty(items).map_err(|e| ClientError::local("cannot print JSON", e))?;
    print_line(&text)
}
