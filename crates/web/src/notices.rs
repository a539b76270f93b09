//! E-mail notices to an institution's admins when a data access request
//! for it is created or changed, through SMTP when `smtp_*` is configured.
//! Sent after the request is committed, on a task of its own: a failure is
//! logged (with the institution, never the addresses) and changes nothing;
//! the badge on the admin's pages shows the request either way. Also the
//! acknowledgement of a security report to its reporter.

use crate::i18n::{t, Lang};
use crate::AppState;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use tilgang_core::store::reports::Report;

/// Where and how to send mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender, `tilgang <noreply@kommune.dk>` or a bare address.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// STARTTLS (required once asked for); off only for a relay on
    /// localhost, which then gets plain SMTP.
    pub starttls: bool,
}

/// What a notice is about.
#[derive(Debug, Clone)]
pub struct RequestNotice {
    pub service: String,
    pub client_id: String,
    pub provider: String,
    /// The institutions that received the request.
    pub institutions: Vec<String>,
}

fn fill(text: String, pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .fold(text, |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
}

/// The subject and body (Danish, then English below) for one institution.
pub fn compose(public_url: &str, n: &RequestNotice, number: &str) -> (String, String) {
    let link = format!(
        "{}/staff/{number}/sharing",
        public_url.trim_end_matches('/')
    );
    let pairs = [
        ("service", n.service.as_str()),
        ("client_id", n.client_id.as_str()),
        ("provider", n.provider.as_str()),
        ("institution", number),
        ("link", link.as_str()),
    ];
    let subject = format!(
        "{} / {}",
        fill(t(Lang::Da, "notice.subject"), &pairs),
        fill(t(Lang::En, "notice.subject"), &pairs)
    );
    let body = format!(
        "{}\n\n----\n\n{}\n",
        fill(t(Lang::Da, "notice.body"), &pairs),
        fill(t(Lang::En, "notice.body"), &pairs)
    );
    (subject, body)
}

/// Sends one message to `to`.
pub async fn send(
    cfg: &SmtpConfig,
    to: &[String],
    subject: &str,
    body: &str,
) -> Result<(), String> {
    let mut builder = if cfg.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
            .map_err(|e| e.to_string())?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
    };
    builder = builder.port(cfg.port);
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("smtp_from: {e}"))?;
    let mut m = Message::builder().from(from).subject(subject);
    for addr in to {
        match addr.parse::<Mailbox>() {
            Ok(mb) => m = m.to(mb),
            // One unusable roster address must not stop the others.
            Err(_) => tracing::warn!("a roster e-mail address is not usable; skipped"),
        }
    }
    let msg = m
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| e.to_string())?;
    builder.build().send(msg).await.map(drop).map_err(describe)
}

/// An SMTP failure for the log: a server's answer may quote an address, so
/// only its code is kept.
fn describe(e: lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("the SMTP server answered {code}"),
        None => e.to_string(),
    }
}

/// Tells the admins of each institution, on a task of its own, when SMTP
/// is configured. The caller has committed the request already.
pub fn request_sent(state: &Arc<AppState>, notice: RequestNotice) {
    let Some(cfg) = state.smtp.clone() else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        for number in &notice.institutions {
            let to = match state.store.admin_emails(number).await {
                Ok(to) => to,
                Err(e) => {
                    tracing::warn!(institution = %number, error = %e, "notice: admins not read");
                    continue;
                }
            };
            if to.is_empty() {
                tracing::info!(institution = %number, "notice: no admin with an e-mail address");
                continue;
            }
            let (subject, body) = compose(&state.public_url, &notice, number);
            match send(&cfg, &to, &subject, &body).await {
                Ok(()) => {
                    tracing::info!(institution = %number, recipients = to.len(), "notice sent")
                }
                Err(e) => {
                    tracing::warn!(institution = %number, recipients = to.len(), error = %e, "notice not sent")
                }
            }
        }
    });
}

/// The subject and body (Danish, then English) telling a reporter that an
/// operator has acknowledged their report. Only the reference: the report's
/// content never goes out by mail.
pub fn compose_report_ack(reference: &str) -> (String, String) {
    let pairs = [("reference", reference)];
    let subject = format!(
        "{} / {}",
        fill(t(Lang::Da, "notice.report_ack.subject"), &pairs),
        fill(t(Lang::En, "notice.report_ack.subject"), &pairs)
    );
    let body = format!(
        "{}\n\n----\n\n{}\n",
        fill(t(Lang::Da, "notice.report_ack.body"), &pairs),
        fill(t(Lang::En, "notice.report_ack.body"), &pairs)
    );
    (subject, body)
}

/// Tells the reporter, on a task of its own, that their report was
/// acknowledged: when SMTP is configured and the contact they gave is an
/// e-mail address (anything else, such as a phone number, is left to the
/// operator). The caller has committed the acknowledgement.
pub fn report_acknowledged(state: &Arc<AppState>, report: &Report) {
    let Some(cfg) = state.smtp.clone() else {
        return;
    };
    let contact = report.contact.trim();
    if !contact.contains('@') || contact.parse::<Mailbox>().is_err() {
        tracing::info!(reference = %report.reference, "acknowledgement: no e-mail address to send to");
        return;
    }
    let to = vec![contact.to_owned()];
    let reference = report.reference.clone();
    tokio::spawn(async move {
        let (subject, body) = compose_report_ack(&reference);
        match send(&cfg, &to, &subject, &body).await {
            Ok(()) => tracing::info!(reference = %reference, "acknowledgement sent"),
            Err(e) => {
                tracing::warn!(reference = %reference, error = %e, "acknowledgement not sent")
            }
        }
    });
}
