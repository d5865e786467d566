//! Run reports: a JSON webhook and an HTML email (SMTP or an HTTP email API).
//!
//! A task's `notify` decides where its report goes (absent: the server's notification
//! defaults; an email without a transport or sender takes the defaults'). Delivery failures
//! are returned as values for status and logs: a report that cannot be sent never fails the
//! run. Credentials come from the server's [`SecretSource`] and never appear in an error; a
//! webhook URL (which often holds a token in its path) is shown by host only.

use std::time::Duration;

use jiff::Timestamp;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType},
    },
    transport::smtp::authentication::Credentials as SmtpCredentials,
};
use linkmcp_api::{
    notify::{
        EmailApiSpec, EmailSpec, NotificationSpec, NotifyWhen, SmtpSecurity, SmtpSpec, WebhookSpec,
    },
    task::TaskPhase,
};
use serde::Serialize;
use serde_json::json;

use crate::{
    history::format_duration,
    host::SecretSource,
    pricing::format_usd,
    run::{RunOutcome, summarize},
};

/// What a report is about.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// The McpServer running the task.
    pub server: &'a str,
    /// The task.
    pub task: &'a str,
    /// The agent.
    pub agent: &'a str,
    /// What started the run.
    pub trigger: &'a str,
    /// How it went.
    pub outcome: &'a RunOutcome,
}

impl Notice<'_> {
    fn finished_at(&self) -> Timestamp {
        let elapsed = jiff::SignedDuration::try_from(self.outcome.duration).unwrap_or_default();
        self.outcome
            .started_at
            .checked_add(elapsed)
            .unwrap_or(self.outcome.started_at)
    }

    fn status(&self) -> &'static str {
        match self.outcome.phase {
            TaskPhase::Succeeded => "Succeeded",
            _ => "Failed",
        }
    }
}

/// How each configured channel went: `None` when not configured, else the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The webhook POST.
    pub webhook: Option<Result<(), String>>,
    /// The email.
    pub email: Option<Result<(), String>>,
}

impl Delivery {
    /// The failures in one sentence, for status (`notificationError`), or `None` if all went.
    pub fn error(&self) -> Option<String> {
        let mut errors = Vec::new();
        if let Some(Err(e)) = &self.webhook {
            errors.push(format!("webhook: {e}"));
        }
        if let Some(Err(e)) = &self.email {
            errors.push(format!("email: {e}"));
        }
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

/// The notification settings that apply to a task: its own, completed by the server's
/// defaults for an email's sender, subject prefix and transport; the defaults alone when the
/// task has none.
pub fn effective(
    task: Option<&NotificationSpec>,
    defaults: Option<&NotificationSpec>,
) -> Option<NotificationSpec> {
    let Some(task) = task else {
        return defaults.cloned();
    };
    let mut spec = task.clone();
    if let (Some(email), Some(default_email)) =
        (spec.email.as_mut(), defaults.and_then(|d| d.email.as_ref()))
    {
        if email.from.is_none() {
            email.from.clone_from(&default_email.from);
        }
        if email.subject_prefix.is_none() {
            email
                .subject_prefix
                .clone_from(&default_email.subject_prefix);
        }
        if email.smtp.is_none() && email.http.is_none() {
            email.smtp.clone_from(&default_email.smtp);
            email.http.clone_from(&default_email.http);
        }
    }
    Some(spec)
}

/// Whether a run with `phase` is reported under `when`.
pub fn wanted(when: NotifyWhen, phase: TaskPhase) -> bool {
    match when {
        NotifyWhen::Always => true,
        NotifyWhen::Failure => phase == TaskPhase::Failed,
        NotifyWhen::Success => phase == TaskPhase::Succeeded,
    }
}

/// Sends run reports.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    timeout: Duration,
}

impl Notifier {
    /// A notifier sending HTTP through `http`, each delivery bounded by `timeout`.
    pub fn new(http: reqwest::Client, timeout: Duration) -> Self {
        Self { http, timeout }
    }

    /// Sends the report of `notice` where `spec` says, if its `when` wants it.
    pub async fn notify(
        &self,
        spec: &NotificationSpec,
        notice: &Notice<'_>,
        secrets: &dyn SecretSource,
    ) -> Delivery {
        if !wanted(spec.when, notice.outcome.phase) {
            return Delivery::default();
        }
        let webhook = match &spec.webhook {
            Some(webhook) => Some(self.configured_webhook(webhook, notice, secrets).await),
            None => None,
        };
        let email = match &spec.email {
            Some(email) => Some(self.email(email, notice, secrets).await),
            None => None,
        };
        let delivery = Delivery { webhook, email };
        if let Some(error) = delivery.error() {
            tracing::warn!(task = notice.task, %error, "run report not delivered");
        }
        delivery
    }

    async fn configured_webhook(
        &self,
        webhook: &WebhookSpec,
        notice: &Notice<'_>,
        secrets: &dyn SecretSource,
    ) -> Result<(), String> {
        let authorization = match &webhook.authorization_secret_ref {
            Some(r) => Some(
                secrets
                    .secret_value(r)
                    .ok_or_else(|| missing_secret("webhook authorization", &r.name, &r.key))?,
            ),
            None => None,
        };
        self.webhook(&webhook.url, authorization.as_deref(), notice)
            .await
    }

    /// POSTs the JSON report to `url`.
    pub async fn webhook(
        &self,
        url: &str,
        authorization: Option<&str>,
        notice: &Notice<'_>,
    ) -> Result<(), String> {
        let mut request = self
            .http
            .post(url)
            .timeout(self.timeout)
            .json(&webhook_body(notice));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let shown = host_of(url);
        let response = request.send().await.map_err(|e| {
            format!(
                "could not POST to {shown}: {}",
                scrub(&e.without_url().to_string(), authorization)
            )
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{shown} answered HTTP {}", status.as_u16()))
        }
    }

    async fn email(
        &self,
        email: &EmailSpec,
        notice: &Notice<'_>,
        secrets: &dyn SecretSource,
    ) -> Result<(), String> {
        let from = email.from.as_deref().ok_or(
            "no sender address: set notify.email.from on the task or email.from in the \
             McpServer's notification defaults",
        )?;
        let report = EmailReport::render(notice, email.subject_prefix.as_deref());
        match (&email.smtp, &email.http) {
            (_, Some(api)) => self.email_api(api, from, &email.to, &report, secrets).await,
            (Some(smtp), None) => {
                send_smtp(smtp, from, &email.to, &report, secrets, self.timeout).await
            }
            (None, None) => Err(
                "no email transport: set notify.email.smtp or notify.email.http, or an email \
                 transport in the McpServer's notification defaults"
                    .to_owned(),
            ),
        }
    }

    async fn email_api(
        &self,
        api: &EmailApiSpec,
        from: &str,
        to: &[String],
        report: &EmailReport,
        secrets: &dyn SecretSource,
    ) -> Result<(), String> {
        let r = &api.api_key_secret_ref;
        let key = secrets
            .secret_value(r)
            .ok_or_else(|| missing_secret("email API key", &r.name, &r.key))?;
        let shown = host_of(&api.url);
        let response = self
            .http
            .post(&api.url)
            .timeout(self.timeout)
            .bearer_auth(&key)
            .json(&json!({
                "from": from,
                "to": to,
                "subject": report.subject,
                "html": report.html,
            }))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not reach the email API at {shown}: {}",
                    scrub(&e.without_url().to_string(), Some(&key))
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(300).collect();
        Err(format!(
            "the email API at {shown} answered HTTP {}: {}",
            status.as_u16(),
            scrub(&body, Some(&key))
        ))
    }
}

/// The JSON a webhook receives.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody<'a> {
    server: &'a str,
    task: &'a str,
    agent: &'a str,
    status: &'a str,
    trigger: &'a str,
    summary: &'a str,
    output: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    model: &'a str,
    tokens: WebhookTokens,
    cost: WebhookCost,
    started_at: String,
    finished_at: String,
    duration_seconds: f64,
    tool_calls: usize,
}

#[derive(Debug, Serialize)]
struct WebhookTokens {
    input: u64,
    output: u64,
    total: u64,
}

#[derive(Debug, Serialize)]
struct WebhookCost {
    usd: f64,
    display: String,
}

fn webhook_body<'a>(notice: &'a Notice<'a>) -> WebhookBody<'a> {
    let o = notice.outcome;
    WebhookBody {
        server: notice.server,
        task: notice.task,
        agent: notice.agent,
        status: notice.status(),
        trigger: notice.trigger,
        summary: &o.summary,
        output: &o.output,
        error: o.error.as_deref(),
        model: &o.model,
        tokens: WebhookTokens {
            input: o.usage.input_tokens,
            output: o.usage.output_tokens,
            total: o.usage.total(),
        },
        cost: WebhookCost {
            usd: o.cost.usd,
            display: format_usd(o.cost.usd),
        },
        started_at: o.started_at.to_string(),
        finished_at: notice.finished_at().to_string(),
        duration_seconds: (o.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        tool_calls: o.tool_calls.len(),
    }
}

/// A rendered email report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailReport {
    /// The subject line.
    pub subject: String,
    /// The styled HTML body.
    pub html: String,
    /// The plain-text alternative.
    pub text: String,
}

impl EmailReport {
    /// Renders the report of `notice`; `prefix` defaults to `[linkmcp]`.
    pub fn render(notice: &Notice<'_>, prefix: Option<&str>) -> Self {
        let o = notice.outcome;
        let status = notice.status();
        let subject = format!(
            "{} {}: {} - {}",
            prefix.unwrap_or("[linkmcp]"),
            notice.task,
            status,
            summarize(&o.summary).chars().take(100).collect::<String>()
        );
        let (badge_bg, badge_fg) = match o.phase {
            TaskPhase::Succeeded => ("#1a7f37", "#ffffff"),
            _ => ("#cf222e", "#ffffff"),
        };
        let rows = [
            ("Agent", notice.agent.to_owned()),
            ("Model", o.model.clone()),
            ("Trigger", notice.trigger.to_owned()),
            (
                "Started",
                o.started_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            (
                "Finished",
                notice
                    .finished_at()
                    .strftime("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
            ),
            ("Duration", format_duration(o.duration)),
            (
                "Tokens",
                format!(
                    "{} ({} in, {} out)",
                    o.usage.total(),
                    o.usage.input_tokens,
                    o.usage.output_tokens
                ),
            ),
            ("Cost", format_usd(o.cost.usd)),
            ("Tool calls", o.tool_calls.len().to_string()),
            ("Server", notice.server.to_owned()),
        ];
        let mut table = String::new();
        for (key, value) in &rows {
            table.push_str(&format!(
                "<tr><td style=\"padding:4px 16px 4px 0;color:#656d76\">{}</td>\
                 <td style=\"padding:4px 0\">{}</td></tr>",
                escape_html(key),
                escape_html(value)
            ));
        }
        let pre = "white-space:pre-wrap;word-wrap:break-word;background:#f6f8fa;\
                   border:1px solid #d0d7de;border-radius:6px;padding:12px;font-size:13px;\
                   font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace";
        let error = o
            .error
            .as_deref()
            .map(|e| {
                format!(
                    "<h2 style=\"font-size:16px;margin:24px 0 8px;color:#cf222e\">Error</h2>\
                     <pre style=\"{pre}\">{}</pre>",
                    escape_html(e)
                )
            })
            .unwrap_or_default();
        let output = if o.output.is_empty() {
            "(no output)".to_owned()
        } else {
            escape_html(&o.output)
        };
        let html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"margin:0;padding:24px;background:#f4f5f7;font-family:-apple-system,\
             'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328\">\
             <div style=\"max-width:760px;margin:0 auto;background:#ffffff;border:1px solid \
             #d0d7de;border-radius:8px;padding:24px\">\
             <h1 style=\"font-size:20px;margin:0 0 12px\">Task {task}</h1>\
             <span class=\"badge\" style=\"display:inline-block;padding:4px 12px;border-radius:12px;\
             background:{badge_bg};color:{badge_fg};font-weight:600;font-size:13px\">{status}</span>\
             <p style=\"font-size:15px;margin:16px 0\">{summary}</p>\
             <table style=\"border-collapse:collapse;font-size:13px\">{table}</table>\
             {error}\
             <h2 style=\"font-size:16px;margin:24px 0 8px\">Output</h2>\
             <pre style=\"{pre}\">{output}</pre>\
             <p style=\"color:#656d76;font-size:12px;margin-top:24px\">Sent by the linkmcp Dark \
             Factory.</p></div></body></html>\n",
            title = escape_html(&subject),
            task = escape_html(notice.task),
            summary = escape_html(&o.summary),
        );
        let mut text = format!("Task {}: {}\n{}\n\n", notice.task, status, o.summary);
        for (key, value) in &rows {
            text.push_str(&format!("{key}: {value}\n"));
        }
        if let Some(e) = &o.error {
            text.push_str(&format!("\nError:\n{e}\n"));
        }
        text.push_str(&format!("\nOutput:\n{}\n", o.output));
        Self {
            subject,
            html,
            text,
        }
    }
}

/// Sends `report` through the SMTP relay `smtp`.
async fn send_smtp(
    smtp: &SmtpSpec,
    from: &str,
    to: &[String],
    report: &EmailReport,
    secrets: &dyn SecretSource,
    timeout: Duration,
) -> Result<(), String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("the sender address {from:?} is invalid: {e}"))?;
    let mut builder = Message::builder().from(from).subject(&report.subject);
    for recipient in to {
        let mailbox: Mailbox = recipient
            .parse()
            .map_err(|e| format!("the recipient address {recipient:?} is invalid: {e}"))?;
        builder = builder.to(mailbox);
    }
    let part = |content_type: ContentType, body: &str| {
        SinglePart::builder()
            .header(content_type)
            .header(ContentTransferEncoding::Base64)
            .body(body.to_owned())
    };
    let message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, &report.text))
                .singlepart(part(ContentType::TEXT_HTML, &report.html)),
        )
        .map_err(|e| format!("the email could not be built: {e}"))?;

    let port = u16::try_from(smtp.port).map_err(|_| format!("invalid SMTP port {}", smtp.port))?;
    let builder = match smtp.security {
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            smtp.host.as_str(),
        )),
    }
    .map_err(|e| format!("SMTP relay {}: {e}", smtp.host))?;
    let mut builder = builder.port(port).timeout(Some(timeout));
    let mut password = None;
    if let Some(creds) = &smtp.credentials_secret_ref {
        let lookup = |credential: &str| {
            let key = creds.key_for(credential);
            secrets
                .secret_value(&linkmcp_api::common::SecretKeyRef {
                    name: creds.name.clone(),
                    key: key.to_owned(),
                })
                .ok_or_else(|| missing_secret("SMTP", &creds.name, key))
        };
        let user = lookup("username")?;
        let pass = lookup("password")?;
        password = Some(pass.clone());
        builder = builder.credentials(SmtpCredentials::new(user, pass));
    }
    let transport = builder.build();
    transport.send(message).await.map(|_| ()).map_err(|e| {
        format!(
            "SMTP delivery through {}:{} failed: {}",
            smtp.host,
            port,
            scrub(&e.to_string(), password.as_deref())
        )
    })
}

fn missing_secret(what: &str, name: &str, key: &str) -> String {
    format!("the {what} Secret key {name}/{key} was not found")
}

/// Removes `secret` from `text`.
fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "<redacted>"),
        _ => text.to_owned(),
    }
}

/// `scheme://host[:port]` of a URL: enough to say where, without a token in its path.
fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "the configured URL".to_owned(),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        pricing::{Cost, PriceSource},
        provider::Usage,
    };

    fn outcome(phase: TaskPhase) -> RunOutcome {
        RunOutcome {
            phase,
            summary: "2 tables need a VACUUM".into(),
            output: "orders: 42% dead <tuples> & \"more\"".into(),
            error: (phase == TaskPhase::Failed).then(|| "boom <x>".to_owned()),
            usage: Usage {
                input_tokens: 1000,
                output_tokens: 200,
            },
            cost: Cost {
                usd: 0.002,
                source: PriceSource::Table("claude-haiku-4-5"),
            },
            cost_note: None,
            model: "claude-haiku-4-5".into(),
            started_at: Timestamp::from_second(1_700_000_000).unwrap_or_default(),
            duration: Duration::from_millis(4200),
            iterations: 2,
            tool_calls: Vec::new(),
            tool_searches: 0,
            tools_offered: Vec::new(),
        }
    }

    fn notice(o: &RunOutcome) -> Notice<'_> {
        Notice {
            server: "data",
            task: "db-health",
            agent: "sre",
            trigger: "schedule",
            outcome: o,
        }
    }

    #[test]
    fn html_escapes_everything_it_shows() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        let failed = outcome(TaskPhase::Failed);
        let report = EmailReport::render(&notice(&failed), Some("[prod]"));
        assert_eq!(
            report.subject,
            "[prod] db-health: Failed - 2 tables need a VACUUM"
        );
        assert!(report.html.contains(
            "background:#cf222e;color:#ffffff;font-weight:600;font-size:13px\">Failed</span>"
        ));
        assert!(
            report
                .html
                .contains("orders: 42% dead &lt;tuples&gt; &amp; &quot;more&quot;")
        );
        assert!(report.html.contains("boom &lt;x&gt;"));
        assert!(!report.html.contains("<tuples>"));
        assert!(report.text.contains("Output:\norders: 42% dead <tuples>"));
        let ok = outcome(TaskPhase::Succeeded);
        let report = EmailReport::render(&notice(&ok), None);
        assert!(report.subject.starts_with("[linkmcp] db-health: Succeeded"));
        assert!(report.html.contains("#1a7f37"));
        assert!(!report.html.contains(">Error</h2>"));
    }

    #[test]
    fn the_webhook_body_has_every_field() {
        let o = outcome(TaskPhase::Succeeded);
        let body = serde_json::to_value(webhook_body(&notice(&o))).unwrap_or_default();
        assert_eq!(body["task"], "db-health");
        assert_eq!(body["agent"], "sre");
        assert_eq!(body["status"], "Succeeded");
        assert_eq!(
            body["tokens"],
            json!({"input": 1000, "output": 200, "total": 1200})
        );
        assert_eq!(body["cost"], json!({"usd": 0.002, "display": "$0.0020"}));
        assert_eq!(body["startedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(body["finishedAt"], "2023-11-14T22:13:24.2Z");
        assert!(body.get("error").is_none());
    }

    #[test]
    fn task_settings_win_and_defaults_fill_the_email_gaps() {
        let defaults = NotificationSpec {
            when: NotifyWhen::Failure,
            webhook: Some(WebhookSpec {
                url: "https://hooks.example.com/x".into(),
                authorization_secret_ref: None,
            }),
            email: Some(EmailSpec {
                to: vec!["ops@example.com".into()],
                from: Some("factory@example.com".into()),
                subject_prefix: Some("[ops]".into()),
                smtp: Some(SmtpSpec {
                    host: "smtp.example.com".into(),
                    ..SmtpSpec::default()
                }),
                http: None,
            }),
        };
        assert_eq!(effective(None, Some(&defaults)), Some(defaults.clone()));
        assert_eq!(effective(None, None), None);
        let task = NotificationSpec {
            email: Some(EmailSpec {
                to: vec!["dba@example.com".into()],
                ..EmailSpec::default()
            }),
            ..NotificationSpec::default()
        };
        let merged = effective(Some(&task), Some(&defaults)).unwrap_or_default();
        assert_eq!(merged.when, NotifyWhen::Always);
        assert!(merged.webhook.is_none(), "the task's own notify wins");
        let email = merged.email.unwrap_or_default();
        assert_eq!(email.to, ["dba@example.com"]);
        assert_eq!(email.from.as_deref(), Some("factory@example.com"));
        assert_eq!(email.subject_prefix.as_deref(), Some("[ops]"));
        assert_eq!(
            email.smtp.map(|s| s.host).as_deref(),
            Some("smtp.example.com")
        );
    }

    #[test]
    fn when_filters_by_phase() {
        assert!(wanted(NotifyWhen::Always, TaskPhase::Failed));
        assert!(wanted(NotifyWhen::Failure, TaskPhase::Failed));
        assert!(!wanted(NotifyWhen::Failure, TaskPhase::Succeeded));
        assert!(wanted(NotifyWhen::Success, TaskPhase::Succeeded));
        assert!(!wanted(NotifyWhen::Success, TaskPhase::Failed));
    }

    #[test]
    fn urls_are_shown_by_host_and_secrets_scrubbed() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080/hook?token=x"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            scrub("key sk-1 refused", Some("sk-1")),
            "key <redacted> refused"
        );
        let d = Delivery {
            webhook: Some(Err("a".into())),
            email: Some(Ok(())),
        };
        assert_eq!(d.error().as_deref(), Some("webhook: a"));
        assert_eq!(Delivery::default().error(), None);
    }
}
