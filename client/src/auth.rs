//! Logging in, out, and turning the stored refresh token into an access token for one command.

use crate::api::{Api, api_base};
use crate::credentials::{Credentials, Store};
use crate::error::{ClientError, Result};
use std::io::{BufRead, IsTerminal, Write};

/// How `login` gets the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    /// The first line of standard input.
    Stdin,
    /// A prompt on the terminal, without echo.
    Prompt,
}

/// Logs in to `server` and stores the session; returns the stored credentials.
pub async fn login(
    store: &Store,
    server: &str,
    email: Option<String>,
    password: PasswordSource,
) -> Result<Credentials> {
    let base = api_base(server)?;
    let api = Api::new(base.clone())?;
    let email = match email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()) {
        Some(email) => email,
        None => prompt_line("E-mail: ")?,
    };
    let password = match password {
        PasswordSource::Stdin => read_stdin_line()?,
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() && !has_tty() {
                return Err(ClientError::Usage("no terminal to ask for the password: use --password-stdin".into()));
            }
            rpassword::prompt_password("Password: ")
                .map_err(|e| ClientError::Usage(format!("cannot read the password ({e}): use --password-stdin")))?
        }
    };
    if password.is_empty() {
        return Err(ClientError::Usage("the password is empty".into()));
    }
    let tokens = api.login(&email, &password).await?;
    let credentials = Credentials { server: base, email, refresh_token: tokens.refresh_token };
    let _lock = store.lock()?;
    store.save(&credentials)?;
    Ok(credentials)
}

/// The stored session, authenticated for this command: the refresh token is exchanged for an access token, and
/// the new refresh token the server hands out (it spends the old one) is stored before anything else happens.
pub async fn session(store: &Store) -> Result<(Api, Credentials)> {
    // Commands running at the same time take turns: each spends the token the previous one stored.
    let _lock = store.lock()?;
    let mut credentials = store.load()?.ok_or(ClientError::NotLoggedIn)?;
    let api = Api::new(credentials.server.clone())?;
    let tokens = api.refresh(&credentials.refresh_token).await?;
    credentials.refresh_token = tokens.refresh_token;
    store.save(&credentials)?;
    Ok((api.with_token(tokens.access_token), credentials))
}

/// Ends the stored session on the server and deletes the credentials. Returns whether the server was told
/// (`false`: the session had ended already).
pub async fn logout(store: &Store) -> Result<bool> {
    if store.load()?.is_none() {
        return Err(ClientError::Usage("not logged in: nothing to log out of".into()));
    }
    let outcome = match session(store).await {
        Ok((api, _)) => api.logout().await.map(|()| true),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(told) => {
            store.delete()?;
            Ok(told)
        }
        // The session is over already (expired, revoked): only the file is left to remove.
        Err(ClientError::NotLoggedIn) => {
            store.delete()?;
            Ok(false)
        }
        Err(e) => {
            store.delete()?;
            Err(ClientError::Local(format!(
                "the local credentials are deleted, but the server could not end the session: {e}"
            )))
        }
    }
}

fn has_tty() -> bool {
    #[cfg(unix)]
    {
        std::fs::File::open("/dev/tty").is_ok()
    }
    #[cfg(not(unix))]
    {
        true
    }
}

fn prompt_line(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Usage("no terminal to ask for the e-mail address: use --username".into()));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let line = read_stdin_line()?;
    if line.trim().is_empty() {
        return Err(ClientError::Usage("the e-mail address is empty".into()));
    }
    Ok(line.trim().to_owned())
}

/// The first line of stdin, without its line ending.
fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| ClientError::local("cannot read standard input", e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
