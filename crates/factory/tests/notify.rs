//! Run reports delivered to a local webhook receiver, a local SMTP sink and a local HTTP email
//! API; failures come back as values.

#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::BTreeMap, time::Duration};

use linkmcp_api::{
    common::{CredentialsSecretRef, SecretKeyRef},
    notify::{
        EmailApiSpec, EmailSpec, NotificationSpec, NotifyWhen, SmtpSecurity, SmtpSpec, WebhookSpec,
    },
    task::TaskPhase,
};
use linkmcp_factory::{
    RunOutcome,
    notify::{Notice, Notifier},
    pricing::{Cost, PriceSource},
    provider::Usage,
    run::{CallOutcome, ToolCallRecord},
};
use serde_json::json;
use support::{Receiver, Secrets, SmtpSink, header, mime_part};

fn outcome(phase: TaskPhase) -> RunOutcome {
    RunOutcome {
        phase,
        summary: "orders has 42% dead tuples".into(),
        output: "orders has 42% dead tuples\n<script>alert('x')</script> & more".into(),
        error: (phase == TaskPhase::Failed).then(|| "the model API failed".to_owned()),
        usage: Usage {
            input_tokens: 3000,
            output_tokens: 250,
        },
        cost: Cost {
            usd: 0.00425,
            source: PriceSource::Table("claude-haiku-4-5"),
        },
        cost_note: None,
        model: "claude-haiku-4-5-20251001".into(),
        started_at: "2026-03-02T07:00:00Z".parse().unwrap(),
        duration: Duration::from_millis(12_400),
        iterations: 3,
        tool_calls: vec![ToolCallRecord {
            name: "pg_table_stats".into(),
            outcome: CallOutcome::Ok,
            duration: Duration::from_millis(30),
        }],
        tool_searches: 0,
        tools_offered: vec![],
    }
}

fn notice(outcome: &RunOutcome) -> Notice<'_> {
    Notice {
        server: "data",
        task: "db-health",
        agent: "sre",
        trigger: "schedule",
        outcome,
    }
}

fn notifier() -> Notifier {
    Notifier::new(reqwest::Client::new(), Duration::from_secs(5))
}

#[tokio::test]
async fn the_webhook_receives_the_json_report() {
    let hook = Receiver::start(200).await;
    let spec = NotificationSpec {
        webhook: Some(WebhookSpec {
            url: hook.url("/services/T0/B0/secret-path"),
            authorization_secret_ref: None,
        }),
        ..NotificationSpec::default()
    };
    let o = outcome(TaskPhase::Succeeded);
    let delivery = notifier()
        .notify(&spec, &notice(&o), &Secrets::default())
        .await;
    assert_eq!(delivery.webhook, Some(Ok(())));
    assert_eq!(delivery.email, None);
    let received = hook.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].headers["content-type"], "application/json");
    assert!(received[0].headers.get("authorization").is_none());
    assert_eq!(
        received[0].body,
        json!({
            "server": "data",
            "task": "db-health",
            "agent": "sre",
            "status": "Succeeded",
            "trigger": "schedule",
            "summary": "orders has 42% dead tuples",
            "output": "orders has 42% dead tuples\n<script>alert('x')</script> & more",
            "model": "claude-haiku-4-5-20251001",
            "tokens": {"input": 3000, "output": 250, "total": 3250},
            "cost": {"usd": 0.00425, "display": "$0.0043"},
            "startedAt": "2026-03-02T07:00:00Z",
            "finishedAt": "2026-03-02T07:00:12.4Z",
            "durationSeconds": 12.4,
            "toolCalls": 1
        })
    );
}

#[tokio::test]
async fn webhook_failures_are_values_that_name_the_host_only() {
    let hook = Receiver::start(502).await;
    let spec = NotificationSpec {
        webhook: Some(WebhookSpec {
            url: hook.url("/services/T0/B0/secret-path"),
            authorization_secret_ref: Some(SecretKeyRef {
                name: "hook".into(),
                key: "auth".into(),
            }),
        }),
        ..NotificationSpec::default()
    };
    let o = outcome(TaskPhase::Failed);
    let secrets = Secrets(BTreeMap::from([(
        "hook/auth".to_owned(),
        "Bearer t0k3n".to_owned(),
    )]));
    let delivery = notifier().notify(&spec, &notice(&o), &secrets).await;
    let error = delivery.error().unwrap();
    assert_eq!(
        error,
        format!("webhook: http://{} answered HTTP 502", hook.addr)
    );
    assert_eq!(hook.received()[0].headers["authorization"], "Bearer t0k3n");

    // A missing Secret key and an unreachable receiver are errors too, without a panic.
    let delivery = notifier()
        .notify(&spec, &notice(&o), &Secrets::default())
        .await;
    assert!(
        delivery
            .error()
            .unwrap()
            .contains("Secret key hook/auth was not found")
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = NotificationSpec {
        webhook: Some(WebhookSpec {
            url: format!("http://{closed}/secret-path"),
            authorization_secret_ref: None,
        }),
        ..NotificationSpec::default()
    };
    let delivery = notifier()
        .notify(&unreachable, &notice(&o), &Secrets::default())
        .await;
    let error = delivery.error().unwrap();
    assert!(
        error.starts_with(&format!("webhook: could not POST to http://{closed}")),
        "{error}"
    );
    assert!(!error.contains("secret-path"), "{error}");

    // `when: success` skips a failed run entirely.
    let mut only_success = spec.clone();
    only_success.when = NotifyWhen::Success;
    let before = hook.received().len();
    let delivery = notifier()
        .notify(&only_success, &notice(&o), &secrets)
        .await;
    assert_eq!(delivery, Default::default());
    assert_eq!(hook.received().len(), before);
}

#[tokio::test]
async fn the_email_report_reaches_the_smtp_sink_as_styled_html() {
    let sink = SmtpSink::start().await;
    let spec = NotificationSpec {
        email: Some(EmailSpec {
            to: vec!["oncall@example.com".into(), "dba@example.com".into()],
            from: Some("Dark Factory <factory@example.com>".into()),
            subject_prefix: Some("[prod]".into()),
            smtp: Some(SmtpSpec {
                host: "127.0.0.1".into(),
                port: i32::from(sink.addr.port()),
                security: SmtpSecurity::None,
                credentials_secret_ref: None,
            }),
            http: None,
        }),
        ..NotificationSpec::default()
    };
    let o = outcome(TaskPhase::Failed);
    let delivery = notifier()
        .notify(&spec, &notice(&o), &Secrets::default())
        .await;
    assert_eq!(delivery.email, Some(Ok(())), "{delivery:?}");

    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "factory@example.com");
    assert_eq!(mail.to, ["oncall@example.com", "dba@example.com"]);
    assert_eq!(
        header(&mail.data, "Subject"),
        Some("[prod] db-health: Failed - orders has 42% dead tuples")
    );
    assert_eq!(
        header(&mail.data, "To"),
        Some("oncall@example.com, dba@example.com")
    );
    assert!(
        header(&mail.data, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );

    let html = mime_part(&mail.data, "text/html; charset=utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<h1 style=\"font-size:20px;margin:0 0 12px\">Task db-health</h1>"));
    assert!(html.contains(
        "background:#cf222e;color:#ffffff;font-weight:600;font-size:13px\">Failed</span>"
    ));
    assert!(html.contains(
        "orders has 42% dead tuples\n&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"
    ));
    assert!(!html.contains("<script>"), "the output is escaped");
    assert!(html.contains("the model API failed"));
    assert!(html.contains("3250 (3000 in, 250 out)"));
    assert!(html.contains("$0.0043"));
    assert!(html.contains("12.4s"));

    let text = mime_part(&mail.data, "text/plain; charset=utf-8");
    assert!(text.contains("Task db-health: Failed"));
    assert!(text.contains("<script>alert('x')</script> & more"));
}

#[tokio::test]
async fn smtp_failures_are_values() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let smtp = |port: u16, creds: Option<CredentialsSecretRef>| NotificationSpec {
        email: Some(EmailSpec {
            to: vec!["oncall@example.com".into()],
            from: Some("factory@example.com".into()),
            subject_prefix: None,
            smtp: Some(SmtpSpec {
                host: "127.0.0.1".into(),
                port: i32::from(port),
                security: SmtpSecurity::None,
                credentials_secret_ref: creds,
            }),
            http: None,
        }),
        ..NotificationSpec::default()
    };
    let o = outcome(TaskPhase::Succeeded);
    let delivery = notifier()
        .notify(&smtp(closed.port(), None), &notice(&o), &Secrets::default())
        .await;
    let error = delivery.error().unwrap();
    assert!(
        error.starts_with(&format!(
            "email: SMTP delivery through 127.0.0.1:{} failed",
            closed.port()
        )),
        "{error}"
    );

    let creds = CredentialsSecretRef {
        name: "mail".into(),
        keys: BTreeMap::new(),
    };
    let delivery = notifier()
        .notify(
            &smtp(closed.port(), Some(creds)),
            &notice(&o),
            &Secrets::default(),
        )
        .await;
    assert!(
        delivery
            .error()
            .unwrap()
            .contains("SMTP Secret key mail/username was not found")
    );

    let mut no_sender = smtp(closed.port(), None);
    no_sender.email.as_mut().unwrap().from = None;
    let delivery = notifier()
        .notify(&no_sender, &notice(&o), &Secrets::default())
        .await;
    assert!(delivery.error().unwrap().contains("no sender address"));
}

#[tokio::test]
async fn the_email_api_receives_from_to_subject_and_html_with_the_bearer_key() {
    let api = Receiver::start(200).await;
    let spec = NotificationSpec {
        email: Some(EmailSpec {
            to: vec!["oncall@example.com".into()],
            from: Some("factory@example.com".into()),
            subject_prefix: None,
            smtp: None,
            http: Some(EmailApiSpec {
                url: api.url("/emails"),
                api_key_secret_ref: SecretKeyRef {
                    name: "resend".into(),
                    key: "apiKey".into(),
                },
            }),
        }),
        ..NotificationSpec::default()
    };
    let secrets = Secrets(BTreeMap::from([(
        "resend/apiKey".to_owned(),
        "re_123".to_owned(),
    )]));
    let o = outcome(TaskPhase::Succeeded);
    let delivery = notifier().notify(&spec, &notice(&o), &secrets).await;
    assert_eq!(delivery.email, Some(Ok(())));
    let received = api.received();
    assert_eq!(received[0].path, "/emails");
    assert_eq!(received[0].headers["authorization"], "Bearer re_123");
    let body = received[0].body.as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["from", "html", "subject", "to"]);
    assert_eq!(body["from"], "factory@example.com");
    assert_eq!(body["to"], json!(["oncall@example.com"]));
    assert_eq!(
        body["subject"],
        "[linkmcp] db-health: Succeeded - orders has 42% dead tuples"
    );
    let html = body["html"].as_str().unwrap();
    assert!(html.contains("#1a7f37") && html.contains(">Succeeded</span>"));
    assert!(html.contains("&lt;script&gt;"));

    let failing = Receiver::start(422).await;
    let mut spec = spec;
    spec.email.as_mut().unwrap().http.as_mut().unwrap().url = failing.url("/emails");
    let delivery = notifier().notify(&spec, &notice(&o), &secrets).await;
    let error = delivery.error().unwrap();
    assert!(error.contains("answered HTTP 422"), "{error}");
    assert!(!error.contains("re_123"));
}
