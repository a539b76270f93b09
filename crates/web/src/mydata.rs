//! "Mine data": `/account/data` shows a signed-in person what tilgang holds
//! about them and their children and which services received it;
//! `/account/data.json` is the same as a download. Core audits each view.

use crate::auth::{signed_in, uncached, Texts};
use crate::error::ApiError;
use crate::pages::{lang_of, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;
use tilgang_core::identity::mydata::{self, ApprovalRef, PersonData};

struct Section {
    you: bool,
    name: String,
    /// (label, value)
    facts: Vec<(String, String)>,
    roles: Vec<String>,
    groups: Vec<String>,
    contacts: Vec<String>,
    /// (service, when, what, package)
    received: Vec<(String, String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "mydata.html")]
struct MyDataPage {
    lang: &'static str,
    t: Texts,
    sections: Vec<Section>,
    /// (name, package)
    services: Vec<(String, String)>,
    has_children: bool,
}

fn when(at_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at_us.div_euclid(1_000_000))
        .map(|t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

fn until(t: &Texts, ended: &Option<String>) -> String {
    ended
        .as_ref()
        .map(|d| format!(" ({} {d})", t.get("mydata.ended")))
        .unwrap_or_default()
}

fn section(t: &Texts, d: &PersonData, you: bool) -> Section {
    let p = &d.person;
    let yes_no = |b: bool| t.get(if b { "mydata.yes" } else { "mydata.no" });
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| t.get("mydata.none"));
    let mut facts = vec![
        (
            t.get("mydata.name"),
            format!("{} {}", p.given_name, p.family_name),
        ),
        (t.get("mydata.user_id"), p.user_id.clone()),
        (t.get("mydata.birth_date"), opt(&p.birth_date)),
        (t.get("mydata.gender"), opt(&p.gender)),
        (t.get("mydata.email"), opt(&p.email)),
    ];
    let phones: Vec<String> = p.phones.iter().map(|ph| ph.number.clone()).collect();
    facts.push((
        t.get("mydata.phones"),
        if phones.is_empty() {
            t.get("mydata.none")
        } else {
            phones.join(", ")
        },
    ));
    facts.push((
        t.get("mydata.address"),
        p.address
            .as_ref()
            .map(|a| {
                [&a.street, &a.postal_code, &a.city]
                    .iter()
                    .filter_map(|s| s.as_deref())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| t.get("mydata.none")),
    ));
    facts.push((
        t.get("mydata.cpr"),
        t.get(if p.has_cpr {
            "mydata.cpr_held"
        } else {
            "mydata.cpr_none"
        }),
    ));
    facts.push((t.get("mydata.protected"), yes_no(p.protected)));
    facts.push((t.get("mydata.source"), opt(&p.source_system)));
    Section {
        you,
        name: format!("{} {}", p.given_name, p.family_name),
        facts,
        roles: d
            .roles
            .iter()
            .map(|r| {
                let mut s = format!("{}: {}", r.institution_name, r.role);
                if let Some(g) = &r.grade_level {
                    s.push_str(&format!(", {} {g}", t.get("mydata.grade")));
                }
                s + &until(t, &r.ended_on)
            })
            .collect(),
        groups: d
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{} ({}, {}){}",
                    g.name,
                    g.kind,
                    g.institution_name,
                    until(t, &g.ended_on)
                )
            })
            .collect(),
        contacts: d
            .contact_persons
            .iter()
            .map(|c| {
                let mut s = format!(
                    "{} {} ({}, {})",
                    c.other_given_name, c.other_family_name, c.relation, c.institution_name
                );
                if c.custody {
                    s.push_str(&format!(", {}", t.get("mydata.custody")));
                }
                s + &until(t, &c.ended_on)
            })
            .collect(),
        received: d
            .received_by
            .iter()
            .map(|r| {
                (
                    r.service.clone(),
                    when(r.at_us),
                    t.get(&format!("mydata.how.{}", r.action)),
                    r.package
                        .as_deref()
                        .map(|p| t.get(&format!("mydata.package.{p}")))
                        .unwrap_or_default(),
                    approvals(t, &r.approvals),
                )
            })
            .collect(),
    }
}

/// "Skovbakke Skole, version 2, approved 2026-11-23", or why there was none.
fn approvals(t: &Texts, list: &[ApprovalRef]) -> String {
    if list.is_empty() {
        return t.get("mydata.approval_none");
    }
    list.iter()
        .map(|a| {
            t.get("mydata.approval_ref")
                .replace("{institution}", &a.institution_name)
                .replace("{version}", &a.version.to_string())
                .replace("{date}", &a.approved_on)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `/account/data`
pub async fn page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&q, &headers);
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(data) =
        mydata::my_data(&*state.store, &*state.clock, session.person_id, "page").await?
    else {
        return Ok(Redirect::to("/login").into_response());
    };
    let t = Texts(lang);
    let mut sections = vec![section(&t, &data.you, true)];
    sections.extend(data.children.iter().map(|c| section(&t, c, false)));
    let page = MyDataPage {
        lang: lang.code(),
        has_children: !data.children.is_empty(),
        services: data
            .services_available
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    t.get(&format!("mydata.package.{}", s.package)),
                )
            })
            .collect(),
        sections,
        t,
    };
    Ok(uncached(render(&page)))
}

/// `/account/data.json`: the same data as a file.
pub async fn download(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(data) =
        mydata::my_data(&*state.store, &*state.clock, session.person_id, "json").await?
    else {
        return Ok(Redirect::to("/login").into_response());
    };
    let body = serde_json::to_vec_pretty(&data).map_err(tilgang_core::Error::store)?;
    let res = (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tilgang-mine-data.json\"",
            ),
        ],
        body,
    )
        .into_response();
    Ok(uncached(res))
}
