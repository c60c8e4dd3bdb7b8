//! `querygpt ask`: one question over `GET /chat/stream`, shown live, resumed with `Last-Event-ID` when the
//! stream breaks, and stopped with `POST /chat/stop` on Ctrl-C.

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::render::{self, Progress};
use crate::resolve;
use crate::sse::{SseEvent, SseStream, StreamEnd};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

/// How often a broken stream is resumed before the question fails.
const MAX_RESUMES: u32 = 2;
/// How long Ctrl-C waits for the server to acknowledge the stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long, after the stop, the stream may take to deliver its last event (shown with `--json`).
const STOPPED_EVENT_TIMEOUT: Duration = Duration::from_secs(2);

/// What `ask` is asked.
#[derive(Debug, Clone, Default)]
pub struct Question {
    pub text: String,
    /// A connection's name or id.
    pub connection: Option<String>,
    /// A model's name, id or provider model name.
    pub model: Option<String>,
    /// The conversation to continue.
    pub conversation: Option<String>,
    /// `zh` or `en` (the server's default: the user's setting).
    pub language: Option<String>,
    /// Every event as a JSON line on stdout, and nothing else there.
    pub json: bool,
}

/// Asks `question` and shows its answer; Ctrl-C (caught by `interrupt` since before anything was sent) stops it.
pub async fn ask(api: &Api, question: Question, mut interrupt: Interrupt) -> Result<()> {
    let mut params = vec![("query", question.text.clone())];
    if let Some(connection) = &question.connection {
        params.push(("connection_id", interrupt.or(resolve::connection(api, connection)).await?));
    }
    if let Some(model) = &question.model {
        params.push(("model", interrupt.or(resolve::model(api, model)).await?));
    }
    if let Some(conversation) = question.conversation.as_ref().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        params.push(("conversation_id", conversation.to_owned()));
    }
    if let Some(language) = &question.language {
        params.push(("language", language.clone()));
    }

    let mut run = Run { json: question.json, progress: Progress::new(), conversation_id: None, last_id: None };
    if !run.json {
        run.progress.waiting("sending the question".into());
    }
    let response = tokio::select! {
        response = api.open_stream(&params, None) => response?,
        _ = interrupt.recv() => return Err(ClientError::Interrupted("interrupted before the question was asked".into())),
    };
    run.conversation_id = header(&response, "x-conversation-id");
    let mut stream = SseStream::new(response);
    let mut resumes = 0;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = interrupt.recv() => return run.stop(api, &mut stream, &mut interrupt).await,
        };
        let cut = match next {
            Ok(event) => match run.handle(&event)? {
                Flow::Continue => continue,
                Flow::Done => return Ok(()),
                Flow::Reconnect => "the server is restarting".to_owned(),
            },
            Err(StreamEnd::Closed) => "the server closed the stream before the answer".to_owned(),
            Err(StreamEnd::Broken(e)) => format!("the stream broke ({})", innermost(&e)),
        };
        let Some(last_id) = run.last_id.clone() else {
            return Err(ClientError::Protocol { url: api.base().to_owned(), what: format!("{cut}, before any event") });
        };
        // A node that restarts may refuse connections for a moment: an unreachable server is tried again.
        stream = loop {
            if resumes == MAX_RESUMES {
                return Err(run.lost(format!("{cut}; gave up after {MAX_RESUMES} attempts to resume it")));
            }
            resumes += 1;
            run.progress.note(&format!("{cut}: resuming ({resumes}/{MAX_RESUMES})..."));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500) * resumes) => {}
                _ = interrupt.recv() => return run.stop(api, &mut stream, &mut interrupt).await,
            }
            let response = tokio::select! {
                response = api.open_stream(&[], Some(&last_id)) => response,
                _ = interrupt.recv() => return run.stop(api, &mut stream, &mut interrupt).await,
            };
            match response {
                Ok(response) => break SseStream::new(response),
                Err(e @ ClientError::Unreachable { .. }) if resumes < MAX_RESUMES => {
                    run.progress.note(&format!("{cut}: {e}"));
                }
                Err(e) => return Err(run.lost(format!("{cut}, and resuming it failed: {e}"))),
            }
        };
    }
}

/// What the event loop does after an event.
enum Flow {
    Continue,
    Done,
    /// The server ends the stream for a restart: resume it.
    Reconnect,
}

/// The state of one question.
struct Run {
    json: bool,
    progress: Progress,
    conversation_id: Option<String>,
    /// The `id` of the last event received: where a resumed stream starts.
    last_id: Option<String>,
}

impl Run {
    fn handle(&mut self, event: &SseEvent) -> Result<Flow> {
        if let Some(id) = &event.id {
            self.last_id = Some(id.clone());
        }
        if let Some(id) = event.data["conversation_id"].as_str() {
            self.conversation_id = Some(id.to_owned());
        }
        if self.json {
            print_line(&json!({"event": event.event, "id": event.id, "data": event.data}).to_string())?;
        }
        let data = &event.data;
        match event.event.as_str() {
            "progress" if !self.json => {
                let stage = data["stage"].as_str().unwrap_or_default();
                let message = data["message"].as_str().unwrap_or_default();
                self.progress.stage(render::stage_label(stage, data["attempt"].as_u64(), message));
            }
            "result" if !self.json => {
                self.progress.finish_current(true);
                print_line(render::answer(data).trim_end())?;
            }
            "error" => {
                self.progress.finish_current(false);
                let code = data["code"].as_str().unwrap_or("ERROR").to_owned();
                let message = data["message"].as_str().unwrap_or("the server gave no reason").to_owned();
                return Err(ClientError::Chat { code, message });
            }
            "done" => {
                self.progress.finish_current(true);
                if !self.json
                    && let Some(id) = &self.conversation_id
                {
                    print_line(&format!("\nConversation {id} (continue it with --conversation {id})"))?;
                }
                return Ok(Flow::Done);
            }
            "reconnect" => return Ok(Flow::Reconnect),
            _ => {}
        }
        Ok(Flow::Continue)
    }

    /// Ctrl-C: `POST /chat/stop` for the conversation, then the stream's last event (for `--json`) for a moment.
    async fn stop(&mut self, api: &Api, stream: &mut SseStream, interrupt: &mut Interrupt) -> Result<()> {
        self.progress.note("stopping...");
        let Some(conversation_id) = self.conversation_id.clone() else {
            self.progress.finish_current(false);
            // Leaving is all there is to do: the server cancels the job of a client that went away.
            return Err(ClientError::Interrupted("interrupted before the server named the conversation".into()));
        };
        let acknowledged = tokio::select! {
            stopped = tokio::time::timeout(STOP_TIMEOUT, api.stop(&conversation_id)) => match stopped {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", STOP_TIMEOUT.as_secs())),
            },
            _ = interrupt.recv() => Err("interrupted again".to_owned()),
        };
        if acknowledged.is_ok() {
            let _ = tokio::time::timeout(STOPPED_EVENT_TIMEOUT, async {
                while let Ok(event) = stream.next().await {
                    if matches!(self.handle(&event), Ok(Flow::Done) | Err(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.progress.finish_current(false);
        Err(ClientError::Interrupted(match acknowledged {
            Ok(()) => format!("stopped: the server stopped the question (conversation {conversation_id})"),
            Err(why) => format!("interrupted; the server did not confirm the stop: {why}"),
        }))
    }

    /// The error of a stream that could not be resumed.
    fn lost(&mut self, what: String) -> ClientError {
        self.progress.finish_current(false);
        let hint = match &self.conversation_id {
            Some(id) => format!("; the answer, if any, will be in conversation {id}"),
            None => String::new(),
        };
        ClientError::Local(format!("{what}{hint}"))
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn innermost(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Writes one line to stdout at once (a closed stdout is an error, not a panic).
pub(crate) fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| ClientError::local("cannot write to stdout", e))
}

/// Ctrl-C (SIGINT), caught from the moment it is created: it no longer kills the process, and is seen when awaited.
pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Starts catching Ctrl-C.
    pub fn listen() -> Result<Interrupt> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| ClientError::local("cannot listen for Ctrl-C", e))?;
            Ok(Interrupt { signal })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupt {})
        }
    }

    /// `work`, unless Ctrl-C comes first (then the work is dropped and the command ends with status 130).
    pub async fn or<T>(&mut self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            outcome = work => outcome,
            _ = self.recv() => Err(ClientError::Interrupted("interrupted".into())),
        }
    }

    /// The next Ctrl-C.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
