//! The operator and auditor console: login with a named account, then
//! what its role grants (the same permissions as the API): the node's
//! dashboard, issuing a listing, objections and rulings, tasks, a
//! federation query with its receipt, the register of reads, the roster,
//! and the offline audit of an uploaded bundle or receipt.

use super::{Console, Fields, Lang, date, field, local_path, page, urlencode};
use crate::accounts::Permission;
use crate::api::{ApiError, AppState, Params, ask, read_of};
use crate::daemon::{Command, GovernRequest, QUERY_DEADLINE_DEFAULT_MS, QueryAsk, QueryScope};
use crate::views::{QueryView, RegisterView, RosterView, Status, TasksView};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use credence_protocol::identifiers;
use credence_protocol::model::{
    Classification, FeedbackAction, ListKind, Listing, NoticeId, NoticeKind, Remedy, RulingOutcome,
    Severity, Subject, SubjectKind,
};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Listings with an open objection the dashboard lists.
const DASHBOARD_OBJECTIONS: usize = 50;

/// Largest bundle or receipt the audit page takes.
pub const AUDIT_UPLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console", get(dashboard))
        .route("/console/issue", get(issue_form).post(issue))
        .route("/console/objections", get(objections).post(object))
        .route("/console/tasks", get(tasks).post(feedback))
        .route("/console/query", get(query_form).post(query))
        .route("/console/register", get(register))
        .route("/console/federation", get(federation).post(sign))
        .route(
            "/console/audit",
            get(audit_form)
                .post(audit)
                .layer(DefaultBodyLimit::max(AUDIT_UPLOAD_BYTES_MAX)),
        )
}

/// The console's own navigation, by what the role grants.
fn nav(c: &Console) -> Markup {
    let t = |zh, en| c.lang.t(zh, en);
    let issue = c.role.permits(Permission::Issue);
    let audit = c.role.permits(Permission::Audit);
    html! {
        nav class="console" aria-label=(t("控制台", "Console")) {
            a href="/console" { (t("概况", "Dashboard")) }
            @if issue {
                a href="/console/issue" { (t("认定", "Issue a listing")) }
                a href="/console/objections" { (t("异议", "Objections")) }
            }
            a href="/console/tasks" { (t("任务", "Tasks")) }
            a href="/console/query" { (t("联盟查询", "Federation query")) }
            a href="/console/federation" { (t("成员名册", "Roster")) }
            @if audit {
                a href="/console/register" { (t("查询登记", "Register of reads")) }
                a href="/console/audit" { (t("审计", "Audit")) }
            }
        }
    }
}

/// A console page: the console's navigation, then `body`.
fn console_page(c: &Console, title: &str, body: Markup) -> Response {
    c.page(title, html! { (nav(c)) (body) })
}

/// The same page, with an HTTP status other than 200.
fn console_page_with(c: &Console, status: StatusCode, title: &str, body: Markup) -> Response {
    let mut response = console_page(c, title, body);
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackParams {
    back: Option<String>,
}

fn login_page(lang: Lang, back: &str, error: Option<&str>, account: &str) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    page(
        lang,
        t("登录控制台", "Log in to the console"),
        "/console/login",
        None,
        html! {
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action="/console/login" class="stacked" {
                input type="hidden" name="back" value=(back);
                (field("account", t("账户", "Account"),
                    html! { input id="account" name="account" type="text" autocomplete="username" required value=(account); },
                    None, None))
                (field("secret", t("密钥", "Secret"),
                    html! { input id="secret" name="secret" type="password" autocomplete="current-password" required aria-describedby="secret-hint"; },
                    None, Some(t("账户凭据中点号之后的部分（由 credence account add 给出）。", "The part of the account's credential after the dot (given by credence account add)."))))
                button type="submit" { (t("登录", "Log in")) }
            }
        },
    )
}

async fn login_form(lang: Lang, Params(params): Params<BackParams>) -> Response {
    login_page(lang, local_path(params.back.as_deref()), None, "").into_response()
}

async fn login(State(state): State<AppState>, lang: Lang, body: Bytes) -> Response {
    let fields = match Fields::parse(&body, &["account", "secret", "back"]) {
        Ok(fields) => fields,
        Err(error) => return error.page(lang),
    };
    let back = local_path(fields.get("back")).to_string();
    let account = fields.get("account").unwrap_or_default().to_string();
    let refused = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            login_page(lang, &back, Some(message), &account),
        )
            .into_response()
    };
    let (Some(name), Some(secret)) = (fields.get("account"), fields.get("secret")) else {
        return refused(lang.t("请填写账户和密钥。", "Give the account and its secret."));
    };
    let credential = format!("{name}.{secret}");
    if let Err(error) = state.accounts.check(Some(&credential), Permission::Read) {
        return refused(&error.to_string());
    }
    match state.sessions.open(credential, Instant::now()) {
        Ok(session) => {
            let target = if back == "/" { "/console" } else { &back };
            let mut response = Redirect::to(target).into_response();
            let cookie = format!(
                "{}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                super::SESSION_COOKIE,
                super::SESSION_TTL.as_secs()
            );
            if let Ok(value) = cookie.parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => error.page(lang),
    }
}

async fn logout(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    let fields = match Fields::parse(&body, &["csrf"]) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    if let Err(error) = c.check_csrf(&fields) {
        return error.page(c.lang);
    }
    state.sessions.close(&c.session);
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = format!("{}=; Path=/; Max-Age=0", super::SESSION_COOKIE).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn yes(lang: Lang, value: bool) -> &'static str {
    if value {
        lang.t("是", "yes")
    } else {
        lang.t("否", "no")
    }
}

async fn dashboard(State(state): State<AppState>, c: Console) -> Response {
    let t = |zh, en| c.lang.t(zh, en);
    let status: Status = match ask(&state, Command::Status).await {
        Ok(status) => status,
        Err(error) => return error.page(c.lang),
    };
    let own = status
        .checkpoints
        .iter()
        .find(|cp| cp.author == status.authority);
    let first = crate::daemon::TaskAsk {
        after: None,
        limit: DASHBOARD_OBJECTIONS,
    };
    let (objected, more) = match ask(&state, |tx| Command::Objections(first, tx)).await {
        Ok(page) => page,
        Err(error) => return error.page(c.lang),
    };
    let now = crate::node::now();
    console_page(
        &c,
        t("节点概况", "Node dashboard"),
        html! {
            dl class="record" {
                dt { (t("本节点", "This node")) } dd { (status.name) " · " code class="key" { (status.authority) } }
                dt { (t("联盟", "Federation")) } dd { (status.federation) }
                dt { (t("可以认定", "Issuing")) } dd class={ "state-" (status.issuing) } { (status.issuing) @if !status.issuing_detail.is_empty() { " — " (status.issuing_detail) } }
                dt { (t("待处理", "Pending")) } dd { (status.pending) }
                dt { (t("未发布", "Unpublished")) } dd { (status.unpublished) }
                dt { (t("分叉", "Forks")) } dd class={ @if status.forks > 0 { "state-bad" } } { (status.forks) }
                dt { (t("本机日志", "Own log")) } dd {
                    @if let Some(a) = status.authors.iter().find(|a| a.author == status.authority) { (a.seq) " " (t("条", "notices")) }
                }
                dt { (t("最新联署检查点", "Newest cosigned checkpoint")) } dd {
                    @match own {
                        Some(cp) => {
                            (t("规模 ", "size ")) (cp.witnessed_size.unwrap_or(cp.size))
                            " · " (t("联署：", "cosigned by ")) (cp.witnessed_cosigners.join(", "))
                            @if cp.split_view { " · " strong class="state-bad" { (t("发现分裂视图", "SPLIT VIEW")) } }
                        }
                        None => { (t("尚无", "none yet")) }
                    }
                }
            }
            h2 { (t("待裁决的异议", "Objections awaiting a ruling")) }
            @if objected.is_empty() { p class="empty" { (t("没有未裁决的异议。", "No open objection.")) } }
            @else {
                table {
                    thead { tr {
                        th scope="col" { (t("主体", "Subject")) }
                        th scope="col" { (t("认定单位", "Issuer")) }
                        th scope="col" { (t("异议编号", "Objection")) }
                        th scope="col" { (t("提出者", "Filed by")) }
                        th scope="col" { (t("答复期限", "Respond by")) }
                    } }
                    tbody {
                        @for l in &objected {
                            @for o in l.objections.iter().filter(|o| o.ruling.is_none()) {
                                tr {
                                    td { (l.listing.subject.name) @if l.issuer == status.authority { " · " strong { (t("须由本单位裁决", "ours to rule")) } } }
                                    td { (state.federation().name_of(&l.issuer)) }
                                    td { code class="key" { (o.id) } }
                                    td { (state.federation().name_of(&o.author)) }
                                    td class={ @if o.respond_by <= now { "state-bad" } } {
                                        (date(o.respond_by.0))
                                        @if o.respond_by <= now { " · " (t("已逾期", "OVERDUE")) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if more { p { (t("仅列出前若干条。", "Only the first are listed.")) } }
            }
            h2 { (t("各日志的检查点", "Checkpoints of each log")) }
            table {
                thead { tr {
                    th scope="col" { (t("日志", "Log")) }
                    th scope="col" { (t("规模", "Size")) }
                    th scope="col" { (t("联署者", "Cosigned by")) }
                    th scope="col" { (t("见证规模", "Witnessed size")) }
                } }
                tbody { @for cp in &status.checkpoints { tr {
                    td { (cp.name) @if cp.split_view { " · " strong class="state-bad" { (t("分裂视图", "split view")) } } }
                    td { (cp.size) }
                    td { (cp.cosigners.join(", ")) }
                    td { (cp.witnessed_size.map_or_else(|| "-".to_string(), |s| s.to_string())) }
                } } }
            }
            h2 { (t("对等节点", "Peers")) }
            table {
                thead { tr { th scope="col" { (t("成员", "Member")) } th scope="col" { "Peer ID" } } }
                tbody { @for p in &status.peers { tr { td { (p.name) } td { code { (p.peer_id) } } } } }
            }
            h2 { (t("各日志进度", "Logs and lag")) }
            table {
                thead { tr {
                    th scope="col" { (t("作者", "Author")) }
                    th scope="col" { (t("已持有", "Held")) }
                    th scope="col" { (t("已见", "Seen")) }
                    th scope="col" { (t("落后", "Lag")) }
                    th scope="col" { (t("可发布额度", "Notice budget")) }
                } }
                tbody { @for a in &status.authors { tr {
                    td { (a.name) } td { (a.seq) } td { (a.seen) }
                    td class={ @if a.lag > 0 { "state-warn" } } { (a.lag) }
                    td class={ @if a.budget == 0 { "state-warn" } } { (a.budget) }
                } } }
            }
        },
    )
}

/// A listing's form as given: the values to show again and the errors by
/// field.
#[derive(Default)]
struct IssueForm {
    values: BTreeMap<&'static str, String>,
    measures: Vec<String>,
    errors: BTreeMap<&'static str, String>,
    error: Option<String>,
}

/// The fields of the issue form.
const ISSUE_FIELDS: [&str; 14] = [
    "list",
    "subject_kind",
    "subject_id",
    "subject_name",
    "category",
    "severity",
    "reason",
    "legal_basis",
    "document_number",
    "effective",
    "publish_until",
    "share_until",
    "repair_from",
    "classification",
];

impl IssueForm {
    /// The form as given, with no error yet.
    fn given(fields: &Fields) -> IssueForm {
        IssueForm {
            values: ISSUE_FIELDS
                .iter()
                .map(|name| (*name, fields.get(name).unwrap_or_default().to_string()))
                .collect(),
            measures: fields.all("measures"),
            ..IssueForm::default()
        }
    }

    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    fn error(&self, name: &str) -> Option<&str> {
        self.errors.get(name).map(String::as_str)
    }
}

fn options(current: &str, choices: &[(&str, &str)]) -> Markup {
    html! { @for (value, label) in choices { option value=(value) selected[current == *value] { (label) } } }
}

fn text_input(form: &IssueForm, name: &'static str, kind: &str, required: bool) -> Markup {
    let described = match (form.error(name), name) {
        (Some(_), _) => Some(format!("{name}-error")),
        (None, "subject_id") => Some(format!("{name}-hint")),
        _ => None,
    };
    html! {
        input id=(name) name=(name) type=(kind) value=(form.value(name)) required[required]
            aria-invalid=[form.error(name).map(|_| "true")] aria-describedby=[described];
    }
}

fn issue_page(
    c: &Console,
    federation: &Federation,
    form: &IssueForm,
    status: StatusCode,
) -> Response {
    let t = |zh, en| c.lang.t(zh, en);
    let roster = federation.roster();
    let categories: Vec<(String, String)> = roster
        .categories
        .iter()
        .map(|cat| (cat.code.clone(), format!("{} ({})", cat.name, cat.code)))
        .collect();
    let body = html! {
        @if let Some(error) = &form.error { p class="error" role="alert" { (error) } }
        form method="post" action="/console/issue" class="stacked" novalidate {
            (c.csrf_field())
            (field("list", t("名单", "List"), html! {
                select id="list" name="list" { (options(form.value("list"), &[("black", t("黑名单", "Blacklist")), ("red", t("红名单", "Red list"))])) }
            }, form.error("list"), None))
            (field("subject_kind", t("主体类型", "Kind of subject"), html! {
                select id="subject_kind" name="subject_kind" { (options(form.value("subject_kind"), &[
                    ("legal_person", t("法人", "Legal person")),
                    ("other_organisation", t("非法人组织", "Other organisation")),
                    ("natural_person", t("自然人", "Natural person"))])) }
            }, form.error("subject_kind"), None))
            (field("subject_id", t("统一社会信用代码或身份证号码", "Unified social credit code or identity number"),
                text_input(form, "subject_id", "text", true), form.error("subject_id"),
                Some(t("18 位，最后一位为校验码。", "18 characters, the last a check character."))))
            (field("subject_name", t("名称或姓名", "Registered name"), text_input(form, "subject_name", "text", true), form.error("subject_name"), None))
            (field("category", t("类别", "Category"), html! {
                select id="category" name="category" aria-invalid=[form.error("category").map(|_| "true")] {
                    @for (code, label) in &categories { option value=(code) selected[form.value("category") == code] { (label) } }
                }
            }, form.error("category"), None))
            (field("severity", t("严重程度", "Severity"), html! {
                select id="severity" name="severity" { (options(form.value("severity"), &[
                    ("serious", t("严重", "Serious")), ("general", t("一般", "General")), ("minor", t("轻微", "Minor"))])) }
            }, form.error("severity"), None))
            (field("reason", t("事由", "Reason"), text_input(form, "reason", "text", true), form.error("reason"), None))
            (field("legal_basis", t("法律依据", "Legal basis"), text_input(form, "legal_basis", "text", true), form.error("legal_basis"), None))
            (field("document_number", t("决定文书号", "Decision number"), text_input(form, "document_number", "text", true), form.error("document_number"), None))
            fieldset {
                legend { (t("措施（目录规定的强制措施会自动加入）", "Measures (the catalog's mandatory ones are added)")) }
                @for m in &roster.measures {
                    @let id = format!("measure-{}", m.code);
                    div class="check" {
                        input type="checkbox" id=(id) name="measures" value=(m.code) checked[form.measures.contains(&m.code)];
                        label for=(id) { (m.name) " (" (m.code) ", " (m.list.name()) ")" }
                    }
                }
            }
            (field("effective", t("生效日期（空：今天）", "Effective (empty: today)"), text_input(form, "effective", "date", false), form.error("effective"), None))
            (field("publish_until", t("公示截止（空：按目录）", "Published until (empty: the catalog's)"), text_input(form, "publish_until", "date", false), form.error("publish_until"), None))
            (field("share_until", t("共享截止（空：按目录）", "Shared until (empty: the catalog's)"), text_input(form, "share_until", "date", false), form.error("share_until"), None))
            (field("repair_from", t("最早修复日期（空：按目录）", "Repair possible from (empty: the catalog's)"), text_input(form, "repair_from", "date", false), form.error("repair_from"), None))
            (field("classification", t("公开级别", "Level"), html! {
                select id="classification" name="classification" { (options(form.value("classification"), &[
                    ("public", t("公开", "Public")), ("restricted", t("受限（仅成员）", "Restricted (members only)")), ("auditors", t("仅审计", "Auditors only"))])) }
            }, form.error("classification"), None))
            button type="submit" { (t("签署并发布", "Sign and publish")) }
        }
    };
    console_page_with(c, status, t("认定一条名单记录", "Issue a listing"), body)
}

async fn issue_form(State(state): State<AppState>, c: Console) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    let form = IssueForm {
        values: [
            ("list", "black"),
            ("subject_kind", "legal_person"),
            ("severity", "serious"),
            ("classification", "public"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect(),
        ..IssueForm::default()
    };
    issue_page(&c, &state.federation(), &form, StatusCode::OK)
}

/// Reads the issue form into a listing, or the form back with an error
/// under each field that is wrong.
fn read_issue(federation: &Federation, fields: &Fields) -> Result<Listing, IssueForm> {
    let mut form = IssueForm::given(fields);
    let text = |name: &'static str, form: &mut IssueForm| -> String {
        match fields.need(name) {
            Ok(value) => value.to_string(),
            Err(e) => {
                form.errors.insert(name, e.message);
                String::new()
            }
        }
    };
    let list = match fields.get("list") {
        Some("red") => ListKind::Red,
        Some("black") => ListKind::Black,
        _ => {
            form.errors.insert("list", "list: black or red".into());
            ListKind::Black
        }
    };
    let kind = match fields.get("subject_kind") {
        Some("legal_person") => SubjectKind::LegalPerson,
        Some("other_organisation") => SubjectKind::OtherOrganisation,
        Some("natural_person") => SubjectKind::NaturalPerson,
        _ => {
            form.errors.insert(
                "subject_kind",
                "subject_kind: legal_person, other_organisation or natural_person".into(),
            );
            SubjectKind::LegalPerson
        }
    };
    let id = text("subject_id", &mut form).to_ascii_uppercase();
    if !id.is_empty() {
        let checked = match kind {
            SubjectKind::NaturalPerson => identifiers::check_resident_id(&id),
            _ => identifiers::check_uscc(&id),
        };
        if let Err(e) = checked {
            form.errors.insert("subject_id", e.to_string());
        }
    }
    let name = text("subject_name", &mut form);
    let category = text("category", &mut form);
    let severity = match fields.get("severity") {
        Some("minor") => Severity::Minor,
        Some("general") => Severity::General,
        Some("serious") => Severity::Serious,
        _ => {
            form.errors
                .insert("severity", "severity: minor, general or serious".into());
            Severity::Serious
        }
    };
    let reason = text("reason", &mut form);
    let legal_basis = text("legal_basis", &mut form);
    let document_number = text("document_number", &mut form);
    let day = |name: &'static str, form: &mut IssueForm| -> Option<Timestamp> {
        let value = fields.get(name)?;
        match Timestamp::parse(value) {
            Ok(t) => Some(t),
            Err(e) => {
                form.errors.insert(name, format!("{name}: {e}"));
                None
            }
        }
    };
    let effective_at = day("effective", &mut form).unwrap_or_else(crate::node::now);
    let windows = crate::cli::Windows {
        publish_until: day("publish_until", &mut form),
        share_until: day("share_until", &mut form),
        repair_from: day("repair_from", &mut form),
    };
    let classification = match fields.get("classification") {
        Some("public") => Classification::Public,
        Some("restricted") => Classification::Restricted,
        Some("auditors") => Classification::Auditors,
        _ => {
            form.errors.insert(
                "classification",
                "classification: public, restricted or auditors".into(),
            );
            Classification::Public
        }
    };
    for code in &form.measures {
        if federation.measure(code).is_none() {
            form.error = Some(format!("measures: {code:?} is not in the catalog"));
        }
    }
    if !form.errors.is_empty() || form.error.is_some() {
        return Err(form);
    }
    let listing = Listing {
        subject: Subject { kind, id, name },
        list,
        category,
        severity,
        reason,
        legal_basis,
        document_number,
        measures: form.measures.clone(),
        effective_at,
        publish_until: effective_at,
        share_until: effective_at,
        repair_from: effective_at,
        classification,
        evidence: Vec::new(),
        checksum_override: false,
        readers: Vec::new(),
        linked: Vec::new(),
    };
    Ok(crate::cli::complete_listing(federation, listing, windows).0)
}

/// The fields of a form that signs a notice, with the anti-forgery token.
fn signed_form(c: &Console, body: &[u8], known: &[&str]) -> Result<Fields, ApiError> {
    let mut names = vec!["csrf"];
    names.extend_from_slice(known);
    let fields = Fields::parse(body, &names)?;
    c.check_csrf(&fields)?;
    Ok(fields)
}

async fn issue(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    let mut known = ISSUE_FIELDS.to_vec();
    known.push("measures");
    let fields = match signed_form(&c, &body, &known) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    let listing = match read_issue(&state.federation(), &fields) {
        Ok(listing) => listing,
        Err(form) => {
            return issue_page(
                &c,
                &state.federation(),
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    match sign_notice(&state, Ok(NoticeKind::List(listing))).await {
        Ok(outcome) => signed_page(&c, outcome.id, outcome.seq),
        Err(error) => {
            let mut form = IssueForm::given(&fields);
            // The rule's error goes under the field it concerns, and above
            // the form.
            if let Some(field) = field_of(&error) {
                form.errors.insert(field, error.said());
            }
            form.error = Some(error.said());
            let page = issue_page(&c, &state.federation(), &form, StatusCode::OK);
            failed(page, &error)
        }
    }
}

/// Signs `kind` through the node, as `POST /v1/notices` does.
async fn sign_notice(
    state: &AppState,
    kind: Result<NoticeKind, ApiError>,
) -> Result<crate::daemon::IssueOutcome, ApiError> {
    let kind = kind?;
    ask(state, |tx| Command::Issue(Box::new(kind), None, tx)).await
}

/// A page shown again after `error`, with the error's status.
fn failed(mut response: Response, error: &ApiError) -> Response {
    *response.status_mut() = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    response
}

/// The field of the issue form a refusal of the listing concerns, if one.
fn field_of(error: &ApiError) -> Option<&'static str> {
    match error.code {
        "not_granted" | "unknown_category" => Some("category"),
        "identifier" => Some("subject_id"),
        "period_too_long" | "dates" | "repair_too_early" => {
            ["publish_until", "share_until", "repair_from", "effective"]
                .into_iter()
                .find(|field| error.message.contains(field))
        }
        _ => None,
    }
}

/// What a signed notice's page says.
fn signed_page(c: &Console, id: NoticeId, seq: u64) -> Response {
    let t = |zh, en| c.lang.t(zh, en);
    console_page(
        c,
        t("已签署并发布", "Signed and published"),
        html! {
            p role="status" class="notice" {
                (t("已签署、持久保存并向联盟发布：", "Signed, made durable and published to the federation: "))
                code { (id) } " (seq " (seq) ")"
            }
            p { a href={ "/listings/" (id) } { (t("公示页面（如在公示中）", "Its public page (when published)")) } }
        },
    )
}

fn parse_notice(field: &str, text: &str) -> Result<NoticeId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad(
            "bad_field",
            format!("{field}: {text:?} is not a notice id (64 hex digits)"),
        )
    })
}

fn objections_page(c: &Console, federation: &Federation, error: Option<&str>) -> Markup {
    let t = |zh, en| c.lang.t(zh, en);
    let respond_by = credence_protocol::defaults::respond_by(
        crate::node::now(),
        federation.roster().objection_window_ms,
    );
    html! {
        (nav(c))
        @if let Some(error) = error { p class="error" role="alert" { (error) } }
        h2 { (t("代当事人提出异议", "File an objection on the subject's behalf")) }
        p { (t("异议提出后，该记录在裁决前暂停执行并停止公示。", "An objection suspends the listing's enforcement and publication until it is ruled on.")) }
        form method="post" action="/console/objections" class="stacked" {
            (c.csrf_field())
            input type="hidden" name="act" value="object";
            (field("listing", t("记录编号", "Listing id"), html! { input id="listing" name="listing" type="text" required pattern="[0-9a-fA-F]{64}"; }, None, None))
            (field("grounds", t("理由", "Grounds"), html! { textarea id="grounds" name="grounds" required {} }, None, None))
            (field("respond_by", t("答复期限", "Respond by"), html! { input id="respond_by" name="respond_by" type="date" value=(date(respond_by.0 + credence_protocol::time::DAY_MS - respond_by.0 % credence_protocol::time::DAY_MS)); }, None,
                Some(t("不得早于联盟规定的最短答复期。", "No earlier than the federation's minimum response window."))))
            button type="submit" { (t("提出异议", "File the objection")) }
        }
        h2 { (t("裁决异议", "Rule on an objection")) }
        form method="post" action="/console/objections" class="stacked" {
            (c.csrf_field())
            input type="hidden" name="act" value="rule";
            (field("objection", t("异议编号", "Objection id"), html! { input id="objection" name="objection" type="text" required pattern="[0-9a-fA-F]{64}"; }, None, None))
            (field("outcome", t("裁决", "Ruling"), html! {
                select id="outcome" name="outcome" {
                    option value="rejected" { (t("驳回（恢复执行）", "Rejected (enforceable again)")) }
                    option value="withdraw" { (t("成立，撤销记录", "Upheld: the listing is withdrawn")) }
                }
            }, None, None))
            (field("reason", t("裁决理由", "Reasons"), html! { textarea id="reason" name="reason" required {} }, None, None))
            button type="submit" { (t("签署裁决", "Sign the ruling")) }
        }
    }
}

async fn objections(State(state): State<AppState>, c: Console) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    c.page(
        c.lang.t("异议与裁决", "Objections and rulings"),
        objections_page(&c, &state.federation(), None),
    )
}

async fn object(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    let fields = match signed_form(
        &c,
        &body,
        &[
            "act",
            "listing",
            "grounds",
            "respond_by",
            "objection",
            "outcome",
            "reason",
        ],
    ) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    let kind = (|| -> Result<NoticeKind, ApiError> {
        match fields.need("act")? {
            "object" => {
                let respond_by = Timestamp::parse(fields.need("respond_by")?)
                    .map_err(|e| ApiError::bad("bad_field", format!("respond_by: {e}")))?;
                Ok(NoticeKind::Object {
                    listing: parse_notice("listing", fields.need("listing")?)?,
                    grounds: fields.need("grounds")?.to_string(),
                    respond_by,
                })
            }
            "rule" => Ok(NoticeKind::Rule {
                objection: parse_notice("objection", fields.need("objection")?)?,
                outcome: match fields.need("outcome")? {
                    "rejected" => RulingOutcome::Rejected,
                    "withdraw" => RulingOutcome::Upheld(Remedy::Withdraw),
                    other => {
                        return Err(ApiError::bad(
                            "bad_field",
                            format!("outcome: {other:?} is not rejected or withdraw"),
                        ));
                    }
                },
                reason: fields.need("reason")?.to_string(),
            }),
            other => Err(ApiError::bad(
                "bad_field",
                format!("act: {other:?} is not object or rule"),
            )),
        }
    })();
    match sign_notice(&state, kind).await {
        Ok(outcome) => signed_page(&c, outcome.id, outcome.seq),
        Err(error) => {
            let page = c.page(
                c.lang.t("异议与裁决", "Objections and rulings"),
                objections_page(&c, &state.federation(), Some(&error.said())),
            );
            failed(page, &error)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksParams {
    after: Option<String>,
}

/// Listings of tasks a page shows.
const TASKS_PAGE: usize = 50;

async fn tasks_page(
    state: &AppState,
    c: &Console,
    after: Option<NoticeId>,
    error: Option<String>,
) -> Response {
    let t = |zh, en| c.lang.t(zh, en);
    let ask_for = crate::daemon::TaskAsk {
        after,
        limit: TASKS_PAGE,
    };
    let (tasks, more) = match ask(state, |tx| Command::Tasks(None, ask_for, tx)).await {
        Ok(page) => page,
        Err(error) => return error.page(c.lang),
    };
    let view = TasksView::new(&state.federation(), &tasks, more);
    let may_act = c.role.permits(Permission::Issue);
    let body = html! {
        @if let Some(error) = &error { p class="error" role="alert" { (error) } }
        p { (t("本单位需实施或解除的联合奖惩措施。", "The joint measures this authority must apply or lift.")) }
        @if view.tasks.is_empty() { p class="empty" { (t("没有任务。", "No tasks.")) } }
        @else {
            table {
                thead { tr {
                    th scope="col" { (t("任务", "Task")) }
                    th scope="col" { (t("措施", "Measure")) }
                    th scope="col" { (t("主体", "Subject")) }
                    th scope="col" { (t("状态", "Status")) }
                    th scope="col" { (t("认定单位", "Issuer")) }
                    @if may_act { th scope="col" { (t("反馈", "Report back")) } }
                } }
                tbody {
                    @for (n, task) in view.tasks.iter().enumerate() {
                        tr {
                            td { (task.action) }
                            td { (task.measure) }
                            td { (task.subject_name) br; code { (task.subject) } }
                            td { (super::status_name(c.lang, &task.status)) }
                            td { (task.issuer_name) }
                            @if may_act { td {
                                form method="post" action="/console/tasks" class="inline" {
                                    (c.csrf_field())
                                    input type="hidden" name="listing" value=(task.listing);
                                    input type="hidden" name="measure" value=(task.measure);
                                    @if task.action == "apply" {
                                        button type="submit" name="action" value="applied" { (t("已实施", "Applied")) }
                                        label for={ "reason-" (n) } class="visually-hidden" { (t("不实施的理由", "Reason for declining")) }
                                        input id={ "reason-" (n) } name="reason" type="text" placeholder=(t("不实施的理由", "Reason for declining"));
                                        button type="submit" name="action" value="declined" { (t("不实施", "Decline")) }
                                    } @else {
                                        button type="submit" name="action" value="lifted" { (t("已解除", "Lifted")) }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
        @if let Some(next) = view.next { nav class="pager" { a rel="next" href={ "/console/tasks?after=" (next) } { (t("下一页", "Next page")) } } }
    };
    console_page(c, t("任务", "Tasks"), body)
}

async fn tasks(
    State(state): State<AppState>,
    c: Console,
    Params(params): Params<TasksParams>,
) -> Response {
    let after = match params
        .after
        .as_deref()
        .map(|text| parse_notice("after", text))
        .transpose()
    {
        Ok(after) => after,
        Err(error) => return error.page(c.lang),
    };
    tasks_page(&state, &c, after, None).await
}

async fn feedback(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    let fields = match signed_form(&c, &body, &["listing", "measure", "action", "reason"]) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    let kind = (|| -> Result<NoticeKind, ApiError> {
        Ok(NoticeKind::Feedback {
            listing: parse_notice("listing", fields.need("listing")?)?,
            measure: fields.need("measure")?.to_string(),
            action: match fields.need("action")? {
                "applied" => FeedbackAction::Applied,
                "lifted" => FeedbackAction::Lifted,
                "declined" => FeedbackAction::Declined(fields.need("reason")?.to_string()),
                other => {
                    return Err(ApiError::bad(
                        "bad_field",
                        format!("action: {other:?} is not applied, lifted or declined"),
                    ));
                }
            },
        })
    })();
    match sign_notice(&state, kind).await {
        Ok(_) => Redirect::to("/console/tasks").into_response(),
        Err(error) => {
            let page = tasks_page(&state, &c, None, Some(error.said())).await;
            failed(page, &error)
        }
    }
}

fn query_page(c: &Console, fields: Option<&Fields>, result: Markup) -> Markup {
    let t = |zh, en| c.lang.t(zh, en);
    let value = |name: &str| {
        fields
            .and_then(|f| f.get(name))
            .unwrap_or_default()
            .to_string()
    };
    let kind = value("subject_kind");
    html! {
        (nav(c))
        form method="post" action="/console/query" class="stacked" {
            (c.csrf_field())
            (field("subject_kind", t("主体类型", "Kind of subject"), html! {
                select id="subject_kind" name="subject_kind" { (options(&kind, &[
                    ("legal_person", t("法人", "Legal person")),
                    ("other_organisation", t("非法人组织", "Other organisation")),
                    ("natural_person", t("自然人", "Natural person"))])) }
            }, None, None))
            (field("subject_id", t("统一社会信用代码或身份证号码", "Unified social credit code or identity number"),
                html! { input id="subject_id" name="subject_id" type="text" required value=(value("subject_id")); }, None, None))
            (field("purpose", t("查询目的（登记）", "Purpose (registered)"),
                html! { input id="purpose" name="purpose" type="text" required value=(value("purpose")); }, None, None))
            (field("legal_basis", t("法律依据（登记）", "Legal basis (registered)"),
                html! { input id="legal_basis" name="legal_basis" type="text" required value=(value("legal_basis")); }, None, None))
            button type="submit" { (t("向联盟查询", "Query the federation")) }
        }
        (result)
    }
}

async fn query_form(State(state): State<AppState>, c: Console) -> Response {
    if let Err(error) = c.may(&state, Permission::Read) {
        return error.page(c.lang);
    }
    c.page(
        c.lang.t("联盟查询", "Federation query"),
        query_page(&c, None, html! {}),
    )
}

/// Percent-encodes bytes for a `data:` address.
fn data_url(bytes: &[u8]) -> String {
    let mut out = String::from("data:application/octet-stream,");
    for b in bytes {
        out.push_str(&format!("%{b:02X}"));
    }
    out
}

async fn query(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    let caller = match c.may(&state, Permission::Read) {
        Ok(caller) => caller,
        Err(error) => return error.page(c.lang),
    };
    let fields = match signed_form(
        &c,
        &body,
        &["subject_kind", "subject_id", "purpose", "legal_basis"],
    ) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    let t = |zh, en| c.lang.t(zh, en);
    let asked = (|| -> Result<QueryAsk, ApiError> {
        let subject_kind = crate::api::parse_kind(fields.get("subject_kind"))?;
        let subject_id = fields.need("subject_id")?.to_ascii_uppercase();
        crate::api::subject_key("subject_id", subject_kind, &subject_id)?;
        let read = read_of(
            caller,
            fields.get("purpose").map(str::to_string),
            fields.get("legal_basis").map(str::to_string),
        )?;
        Ok(QueryAsk {
            subject_kind,
            subject_id,
            purpose: read.stated.purpose.clone(),
            legal_basis: read.stated.legal_basis.clone(),
            scope: QueryScope::Federation,
            deadline_ms: QUERY_DEADLINE_DEFAULT_MS,
            page: 0,
            clearance: read.clearance,
            account: Some(read.account),
        })
    })();
    let result = match asked {
        Ok(asked) => ask(&state, |tx| Command::Query(asked, tx)).await,
        Err(error) => Err(error),
    };
    let view = result.and_then(|result| {
        QueryView::new(&state.federation(), &result).map_err(|message| ApiError {
            status: 500,
            code: "internal",
            message,
        })
    });
    let (status, shown) = match view {
        Ok(view) => {
            let receipt = crate::cli::audit::receipt_bytes(&view, &state.federation());
            (
                StatusCode::OK,
                html! {
                    h2 { (t("验证后的答复", "Verified answers")) }
                    p { (t("已答复：", "Answered by: ")) (view.answered_by.join(", "))
                        @if !view.not_answered.is_empty() { " · " (t("未答复：", "not answered: "))
                            @for m in &view.not_answered { (m.name) " (" (m.reason) ") " } } }
                    @if view.listings.is_empty() { p class="empty" { (t("联盟中没有该主体的共享记录。", "No shared listing of this subject in the federation.")) } }
                    @else {
                        table {
                            thead { tr {
                                th scope="col" { (t("记录", "Listing")) }
                                th scope="col" { (t("名单", "List")) }
                                th scope="col" { (t("状态", "Status")) }
                                th scope="col" { (t("可执行", "Enforceable")) }
                                th scope="col" { (t("认定单位", "Issuer")) }
                                th scope="col" { (t("证明", "Proof")) }
                            } }
                            tbody { @for l in &view.listings { tr {
                                td { code { (l.id) } }
                                td { (l.listing.list.name()) " · " (l.listing.category) }
                                td { (super::status_name(c.lang, &l.status)) }
                                td { (yes(c.lang, l.enforceable)) }
                                td { (l.issuer_name) }
                                td { (l.proof) }
                            } } }
                        }
                    }
                    @match &receipt {
                        Ok(bytes) => { p { a download={ "receipt-" (view.request_id.get(..16).unwrap_or(&view.request_id)) ".credence" } href=(data_url(bytes)) {
                            (t("下载查询回执（可离线验证）", "Download the receipt (verifiable offline)")) } } }
                        Err(e) => { p class="error" { (t("回执无法生成：", "No receipt: ")) (e.to_string()) } }
                    }
                },
            )
        }
        Err(error) => (
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            html! { p class="error" role="alert" { (error.said()) } },
        ),
    };
    let mut response = c.page(
        t("联盟查询", "Federation query"),
        query_page(&c, Some(&fields), shown),
    );
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterParams {
    from: Option<String>,
    account: Option<String>,
    kind: Option<String>,
    subject: Option<String>,
}

/// Records of the register a page shows.
const REGISTER_PAGE: usize = 100;

async fn register(
    State(state): State<AppState>,
    c: Console,
    Params(params): Params<RegisterParams>,
) -> Response {
    if let Err(error) = c.may(&state, Permission::Audit) {
        return error.page(c.lang);
    }
    let t = |zh, en| c.lang.t(zh, en);
    let from = match params
        .from
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(str::parse::<u64>)
        .transpose()
    {
        Ok(from) => from.unwrap_or(0),
        Err(_) => return ApiError::bad("bad_field", "from: not a record index").page(c.lang),
    };
    let view: RegisterView =
        match ask(&state, |tx| Command::Register(from, REGISTER_PAGE, tx)).await {
            Ok(view) => view,
            Err(error) => return error.page(c.lang),
        };
    let filter = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (account, kind, subject) = (
        filter(&params.account),
        filter(&params.kind),
        filter(&params.subject),
    );
    let records: Vec<_> = view
        .records
        .iter()
        .filter(|r| {
            account
                .as_ref()
                .is_none_or(|a| r.account.as_ref() == Some(a))
        })
        .filter(|r| kind.as_ref().is_none_or(|k| r.kind == *k))
        .filter(|r| {
            subject
                .as_ref()
                .is_none_or(|s| r.subject.as_ref() == Some(s))
        })
        .collect();
    let next = from + view.records.len() as u64;
    let keep = |name: &str, value: &Option<String>| {
        value
            .as_ref()
            .map(|v| format!("&{name}={}", urlencode(v)))
            .unwrap_or_default()
    };
    let next_link = format!(
        "/console/register?from={next}{}{}{}",
        keep("account", &account),
        keep("kind", &kind),
        keep("subject", &subject)
    );
    console_page(
        &c,
        t("查询登记簿", "Register of reads"),
        html! {
            p { (t("登记簿共 ", "The register holds ")) (view.size) (t(" 条，带签名检查点：", " records, under the signed checkpoint:")) }
            pre class="note" { (view.checkpoint) }
            form method="get" action="/console/register" class="filters" {
                input type="hidden" name="from" value=(from);
                div class="field" { label for="account" { (t("账户", "Account")) } input id="account" name="account" type="text" value=[account.as_deref()]; }
                div class="field" { label for="kind" { (t("类型", "Kind")) } input id="kind" name="kind" type="text" value=[kind.as_deref()]; }
                div class="field" { label for="subject" { (t("主体", "Subject")) } input id="subject" name="subject" type="text" value=[subject.as_deref()]; }
                button type="submit" { (t("筛选", "Filter")) }
            }
            table {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { (t("时间", "When")) }
                    th scope="col" { (t("类型", "Kind")) }
                    th scope="col" { (t("账户", "Account")) }
                    th scope="col" { (t("主体", "Subject")) }
                    th scope="col" { (t("目的", "Purpose")) }
                    th scope="col" { (t("法律依据", "Legal basis")) }
                } }
                tbody { @for r in &records { tr {
                    td { (r.index) }
                    td { (Timestamp(r.at)) }
                    td { (r.kind) }
                    td { (r.account.as_deref().or(r.requester.as_deref()).unwrap_or("")) }
                    td { (r.subject.as_deref().unwrap_or("")) }
                    td { (r.purpose) }
                    td { (r.legal_basis) }
                } } }
            }
            @if next < view.size { nav class="pager" { a rel="next" href=(next_link) { (t("下一页", "Next page")) } } }
        },
    )
}

async fn federation(State(state): State<AppState>, c: Console) -> Response {
    federation_page(&state, &c, None).await
}

async fn federation_page(state: &AppState, c: &Console, error: Option<String>) -> Response {
    let t = |zh, en| c.lang.t(zh, en);
    let view: RosterView = match ask(state, Command::Roster).await {
        Ok(view) => view,
        Err(error) => return error.page(c.lang),
    };
    let may_sign = c.role.permits(Permission::Issue);
    console_page(
        c,
        t("成员名册", "Roster"),
        html! {
            @if let Some(error) = &error { p class="error" role="alert" { (error) } }
            p { (t("当前版本：", "Current version: ")) (view.current) }
            table {
                thead { tr {
                    th scope="col" { (t("版本", "Version")) }
                    th scope="col" { (t("成员", "Members")) }
                    th scope="col" { (t("门限", "Threshold")) }
                    th scope="col" { (t("签署者", "Signed by")) }
                } }
                tbody { @for v in &view.versions { tr {
                    td { (v.number) br; code class="key" { (v.hash) } }
                    td { (v.members.join(", ")) }
                    td { (v.threshold) }
                    td { (v.signed_by.join(", ")) }
                } } }
            }
            h2 { (t("待签提案", "Proposals to sign")) }
            @if view.proposals.is_empty() { p class="empty" { (t("没有提案。", "No proposals.")) } }
            @for p in &view.proposals {
                section class="proposal" {
                    h3 { (t("版本 ", "Version ")) (p.number) " · " code class="key" { (p.hash) } }
                    p { (t("已签：", "Signed by: ")) (p.signed_by.join(", ")) " (" (p.members_signed) "/" (p.threshold) ")"
                        @if let Some(why) = &p.not_ready { " · " (why) } }
                    @if may_sign {
                        form method="post" action="/console/federation" class="inline" {
                            (c.csrf_field())
                            input type="hidden" name="hash" value=(p.hash);
                            label {
                                input type="checkbox" name="competing" value="yes";
                                " " (t("即使本成员已签署同一版本的另一提案（两者都达到门槛即构成双重签署）",
                                    "even beside another proposal this member signed for the same version (two that both reach the threshold are an equivocation)"))
                            }
                            " "
                            button type="submit" { (t("签署此提案", "Sign this proposal")) }
                        }
                    }
                }
            }
        },
    )
}

async fn sign(State(state): State<AppState>, c: Console, body: Bytes) -> Response {
    if let Err(error) = c.may(&state, Permission::Issue) {
        return error.page(c.lang);
    }
    let fields = match signed_form(&c, &body, &["hash", "competing"]) {
        Ok(fields) => fields,
        Err(error) => return error.page(c.lang),
    };
    let hash = match fields.need("hash").and_then(crate::api::parse_hash) {
        Ok(hash) => hash,
        Err(error) => return error.page(c.lang),
    };
    let competing = fields.get("competing").is_some();
    match ask(&state, |tx| {
        Command::Govern(GovernRequest::Sign(hash, competing), None, tx)
    })
    .await
    {
        Ok(_) => Redirect::to("/console/federation").into_response(),
        Err(error) => {
            let page = federation_page(&state, &c, Some(error.said())).await;
            failed(page, &error)
        }
    }
}

fn audit_page(c: &Console, result: Markup) -> Markup {
    let t = |zh, en| c.lang.t(zh, en);
    html! {
        (nav(c))
        p { (t("上传审计包（credence export 或 /v1/export 导出）或查询回执，离线验证每个签名和日志。",
               "Upload an audit bundle (from credence export or /v1/export) or a query receipt: every signature and log is verified offline.")) }
        form method="post" action="/console/audit" enctype="multipart/form-data" class="stacked" {
            (c.csrf_field())
            (field("file", t("文件", "File"), html! { input id="file" name="file" type="file" required; }, None, None))
            button type="submit" { (t("验证", "Verify")) }
        }
        (result)
    }
}

async fn audit_form(State(state): State<AppState>, c: Console) -> Response {
    if let Err(error) = c.may(&state, Permission::Audit) {
        return error.page(c.lang);
    }
    c.page(c.lang.t("审计", "Audit"), audit_page(&c, html! {}))
}

/// An uploaded file's bytes and the form's anti-forgery token.
async fn upload(mut multipart: Multipart) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let mut file = None;
    let mut csrf = None;
    let bad = |e: axum::extract::multipart::MultipartError| ApiError {
        status: e.status().as_u16(),
        code: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_form"
        },
        message: format!("the upload: {}", e.body_text()),
    };
    while let Some(part) = multipart.next_field().await.map_err(bad)? {
        match part.name() {
            Some("file") => file = Some(part.bytes().await.map_err(bad)?.to_vec()),
            Some("csrf") => csrf = Some(part.text().await.map_err(bad)?),
            other => {
                return Err(ApiError::bad(
                    "bad_field",
                    format!(
                        "{}: the form has no such field",
                        other.unwrap_or("(unnamed)")
                    ),
                ));
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::bad("bad_field", "file: required"))?;
    Ok((file, csrf))
}

async fn audit(
    State(state): State<AppState>,
    c: Console,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Err(error) = c.may(&state, Permission::Audit) {
        return error.page(c.lang);
    }
    let t = |zh, en| c.lang.t(zh, en);
    let uploaded = match multipart {
        Ok(multipart) => upload(multipart).await,
        Err(rejection) => Err(ApiError::bad("bad_form", rejection.body_text())),
    };
    let (bytes, csrf) = match uploaded {
        Ok(uploaded) => uploaded,
        Err(error) => return error.page(c.lang),
    };
    let token = Fields(vec![("csrf".into(), csrf.unwrap_or_default())]);
    if let Err(error) = c.check_csrf(&token) {
        return error.page(c.lang);
    }
    let federation = state.federation();
    let verified = tokio::task::spawn_blocking(move || verify_upload(&federation, &bytes)).await;
    let (status, passed, title, detail) = match verified {
        Ok(Ok(found)) => (StatusCode::OK, found.passed, found.title, found.detail),
        Ok(Err(message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
            t("无法读取", "Unreadable").to_string(),
            message,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
            t("出错了", "Failed").to_string(),
            e.to_string(),
        ),
    };
    let result = html! {
        section class={ "verdict " @if passed { "pass" } @else { "fail" } } role="status" {
            h2 { (if passed { t("通过", "PASSED") } else { t("未通过", "FAILED") }) " — " (title) }
            pre { (detail) }
        }
    };
    let mut response = c.page(t("审计", "Audit"), audit_page(&c, result));
    *response.status_mut() = status;
    response
}

/// What an uploaded file verified to.
struct Verified {
    passed: bool,
    title: String,
    detail: String,
}

/// Audits a bundle or verifies a receipt of this federation.
fn verify_upload(federation: &Federation, bytes: &[u8]) -> Result<Verified, String> {
    use credence_protocol::bundle::Bundle;
    use credence_protocol::receipt::{Receipt, ReceiptError};
    if let Ok(bundle) = Bundle::from_bytes(bytes) {
        let found = bundle.federation().map_err(|e| e.to_string())?;
        if found.id() != federation.id() {
            return Ok(Verified {
                passed: false,
                title: "bundle".into(),
                detail: format!(
                    "the bundle belongs to federation {} ({}), not to {} ({})",
                    found.roster().name,
                    found.id(),
                    federation.roster().name,
                    federation.id()
                ),
            });
        }
        let report = credence_protocol::bundle::audit(&bundle, crate::node::now(), &mut |_, _| {})
            .map_err(|e| e.to_string())?;
        return Ok(Verified {
            passed: report.passed(),
            title: format!("bundle of {} notices", report.envelopes),
            detail: crate::render::audit(&report),
        });
    }
    match Receipt::from_bytes(bytes).and_then(|receipt| receipt.verify(federation)) {
        Ok(report) => Ok(Verified {
            passed: true,
            title: "receipt".into(),
            detail: crate::render::receipt(federation, &report),
        }),
        Err(error @ ReceiptError::Invalid(_)) => Ok(Verified {
            passed: false,
            title: "receipt".into(),
            detail: error.to_string(),
        }),
        Err(ReceiptError::Unreadable(e)) => Err(format!(
            "neither an audit bundle nor a query receipt of this federation: {e}"
        )),
    }
}
