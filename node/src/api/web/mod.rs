//! The web: server-rendered pages in the node's own HTTP server (maud
//! templates, no script, no external resource), in Chinese (the default)
//! and English.
//!
//! - The public portal (no login, [`public`]): search by identifier or
//!   name, the red and black lists with filters and paging, a listing's
//!   page, the federation's members. It shows only what the publicity
//!   feed shows, natural persons masked, exactly as `/v1/feed` does.
//! - The console ([`console`]): a named account logs in with its
//!   credential; what it sees and may do is what its role grants through
//!   the API. Every act goes through the same commands as the API, so a
//!   bad form gets the API's error and stores nothing.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Strict`
//! cookie; the node keeps, in memory, the credential it was opened with
//! and checks it again on every request (a revoked account is out at
//! once). Every form that acts carries the session's own anti-forgery
//! token. Sessions end after [`SESSION_TTL`] or at logout, and with the
//! process.

use super::{ApiError, AppState};
use crate::accounts::{Permission, Role};
use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use credence_protocol::time::Timestamp;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod console;
mod public;

/// The routes of the web, public and console.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/style.css", get(style))
        .route("/lang/{lang}", get(choose_lang))
        .merge(public::routes())
        .merge(console::routes())
}

/// The style sheet: the only resource the pages load.
async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

/// The language of the pages: Chinese unless the visitor chose English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lang {
    /// 中文.
    Zh,
    /// English.
    En,
}

/// The cookie that keeps the chosen language.
const LANG_COOKIE: &str = "credence_lang";

impl Lang {
    /// The text in this language.
    pub(super) fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The language a request's cookie chose (Chinese when none).
    fn of(headers: &HeaderMap) -> Lang {
        match cookie(headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// The value of cookie `name` in a request's headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Self::Rejection> {
        Ok(Lang::of(&parts.headers))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Back {
    back: Option<String>,
}

/// A path of this site to go back to: `/` then no second `/` or `\`
/// (never another host), at most 2 KiB.
fn local_path(path: Option<&str>) -> &str {
    match path {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 2048
                && !p.chars().any(char::is_control) =>
        {
            p
        }
        _ => "/",
    }
}

/// `GET /lang/{zh|en}?back=`: remembers the language and goes back.
async fn choose_lang(
    Path(lang): Path<String>,
    super::Params(query): super::Params<Back>,
) -> Response {
    let value = match lang.as_str() {
        "zh" => "zh",
        "en" => "en",
        _ => return error_page(Lang::Zh, 404, "no such language: zh or en").into_response(),
    };
    let back = query.back.as_deref();
    let mut response = Redirect::to(local_path(back)).into_response();
    if let Ok(cookie) =
        format!("{LANG_COOKIE}={value}; Path=/; Max-Age=31536000; SameSite=Lax").parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// What the header of a page shows of who is logged in.
pub(super) struct Who<'a> {
    account: &'a str,
    role: Role,
    csrf: &'a str,
}

/// A whole page: header with the navigation and the language switch,
/// the main content, the footer with the machine-readable links.
pub(super) fn page(
    lang: Lang,
    title: &str,
    here: &str,
    who: Option<Who<'_>>,
    body: Markup,
) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    let (other, other_name) = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    let back = local_path(Some(here));
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t("信用信息公示", "credence")) }
                link rel="stylesheet" href="/web/style.css";
            }
            body {
                a class="skip" href="#main" { (t("跳到正文", "Skip to content")) }
                header {
                    nav aria-label=(t("主导航", "Main")) {
                        a class="brand" href="/" { (t("信用信息公示", "Credit information")) }
                        a href="/lists/black" { (t("黑名单", "Blacklist")) }
                        a href="/lists/red" { (t("红名单", "Red list")) }
                        a href="/members" { (t("成员", "Members")) }
                        @match &who {
                            Some(who) => {
                                a href="/console" { (t("控制台", "Console")) }
                                form class="inline" method="post" action="/console/logout" {
                                    input type="hidden" name="csrf" value=(who.csrf);
                                    button type="submit" {
                                        (t("退出", "Log out")) " " (who.account) " (" (who.role.name()) ")"
                                    }
                                }
                            }
                            None => { a href="/console/login" { (t("登录", "Log in")) } }
                        }
                        a lang=(other) hreflang=(other) href={ "/lang/" (other) "?back=" (urlencode(back)) } { (other_name) }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    p {
                        (t("机器可读数据：", "Machine-readable data: "))
                        a href="/v1/feed" { (t("公示流 (JSON)", "feed (JSON)")) } " · "
                        a href="/v1/extract?format=csv" { "CSV" } " · "
                        a href="/v1/extract?format=jsonl" { "JSON Lines" } " · "
                        a href="/v1/openapi.json" { "OpenAPI" }
                    }
                }
            }
        }
    }
}

/// Percent-encodes a query-string value.
pub(super) fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error as a page: the same message the API gives.
pub(super) fn error_page(lang: Lang, status: u16, message: &str) -> Response {
    let title = match status {
        400 | 422 => lang.t("请求有误", "Bad request"),
        401 => lang.t("请先登录", "Log in first"),
        403 => lang.t("无权访问", "Not allowed"),
        404 => lang.t("未找到", "Not found"),
        409 => lang.t("冲突", "Conflict"),
        413 => lang.t("内容过大", "Too large"),
        429 | 503 => lang.t("暂时无法处理", "Try again later"),
        _ => lang.t("出错了", "Something went wrong"),
    };
    let markup = page(
        lang,
        title,
        "/",
        None,
        html! { p role="alert" class="error" { (message) } },
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, markup).into_response()
}

impl ApiError {
    /// What this error says on a page: its message and its code.
    pub(super) fn said(&self) -> String {
        format!("{} ({})", self.message, self.code)
    }

    /// This error as a page in `lang`.
    pub(super) fn page(self, lang: Lang) -> Response {
        let mut response = error_page(lang, self.status, &self.said());
        response
            .extensions_mut()
            .insert(crate::http_metrics::ErrorCode(self.code));
        response
    }
}

/// A form body as name-value pairs in order (a name may repeat, as a
/// set of checkboxes does), with every name checked against the names
/// the form has.
pub(super) struct Fields(Vec<(String, String)>);

/// Most fields one form may send.
const FORM_FIELDS_MAX: usize = 256;

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body whose names are
    /// all in `known`.
    pub(super) fn parse(body: &[u8], known: &[&str]) -> Result<Fields, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::bad("bad_form", format!("the form does not parse: {e}")))?;
        if pairs.len() > FORM_FIELDS_MAX {
            return Err(ApiError::bad(
                "bad_form",
                format!("the form has more than {FORM_FIELDS_MAX} fields"),
            ));
        }
        if let Some((name, _)) = pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            return Err(ApiError::bad(
                "bad_field",
                format!("{name}: the form has no such field"),
            ));
        }
        Ok(Fields(pairs))
    }

    /// The value of `name`, trimmed, if given and not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or what a required field missing says.
    pub(super) fn need(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::bad("bad_field", format!("{name}: required")))
    }

    /// Every value given for `name`, in order.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// A listing's status (`active`, `suspended`, ...) in `lang`.
pub(super) fn status_name(lang: Lang, status: &str) -> String {
    let zh = match status {
        "active" => "有效",
        "pending" => "待生效",
        "suspended" => "暂停（异议处理中）",
        "repaired" => "已修复",
        "withdrawn" => "已撤销",
        "expired" => "已期满",
        other => return other.to_string(),
    };
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => status.to_string(),
    }
}

/// A notice's kind (`list`, `amend`, ...) in `lang`.
pub(super) fn kind_name(lang: Lang, kind: &str) -> String {
    let zh = match kind {
        "list" => "认定",
        "amend" => "更正",
        "repair" => "信用修复",
        "withdraw" => "撤销",
        "object" => "异议",
        "rule" => "异议裁决",
        "feedback" => "措施反馈",
        other => return other.to_string(),
    };
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => kind.to_string(),
    }
}

/// A date as the pages show it (`YYYY-MM-DD`, UTC).
pub(super) fn date(ms: u64) -> String {
    let (year, month, day) = Timestamp(ms).date();
    format!("{year:04}-{month:02}-{day:02}")
}

/// How long a console session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most console sessions open at once.
pub const SESSIONS_MAX: usize = 1024;
/// The session cookie.
const SESSION_COOKIE: &str = "credence_session";

/// An open console session.
#[derive(Clone)]
struct Session {
    /// The credential it was opened with, checked again on every request.
    credential: String,
    /// Its anti-forgery token.
    csrf: String,
    /// When it ends.
    expires: Instant,
}

/// The console sessions of this process.
#[derive(Clone, Default)]
pub(super) struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

/// 32 random bytes, hex.
fn token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError {
        status: 500,
        code: "internal",
        message: format!("no randomness for a session: {e}"),
    })?;
    Ok(hex::encode(bytes))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `credential`; answers its token.
    fn open(&self, credential: String, now: Instant) -> Result<String, ApiError> {
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= SESSIONS_MAX {
            return Err(ApiError {
                status: 503,
                code: "busy",
                message: format!(
                    "{SESSIONS_MAX} console sessions are open; try again when one ends"
                ),
            });
        }
        let id = token()?;
        sessions.insert(
            id.clone(),
            Session {
                credential,
                csrf: token()?,
                expires: now + SESSION_TTL,
            },
        );
        Ok(id)
    }

    fn get(&self, id: &str, now: Instant) -> Option<Session> {
        self.lock().get(id).filter(|s| s.expires > now).cloned()
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// A logged-in visitor of the console, checked against the accounts.
pub(super) struct Console {
    session: String,
    credential: String,
    csrf: String,
    /// The account.
    pub account: String,
    /// Its role.
    pub role: Role,
    /// The page's language.
    pub lang: Lang,
    /// The path asked for (to come back to after logging in).
    path: String,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Console, Response> {
        let lang = Lang::of(&parts.headers);
        let path = parts
            .uri
            .path_and_query()
            .map_or("/console", |p| p.as_str())
            .to_string();
        let login = || {
            Redirect::to(&format!(
                "/console/login?back={}",
                urlencode(local_path(Some(&path)))
            ))
            .into_response()
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login());
        };
        let Some(session) = state.sessions.get(id, Instant::now()) else {
            return Err(login());
        };
        match state
            .accounts
            .check(Some(&session.credential), Permission::Read)
        {
            Ok((account, role)) => Ok(Console {
                session: id.to_string(),
                credential: session.credential,
                csrf: session.csrf,
                account,
                role,
                lang,
                path,
            }),
            Err(error) => {
                state.sessions.close(id);
                Err(ApiError {
                    status: 401,
                    code: "unauthorised",
                    message: error.to_string(),
                }
                .page(lang))
            }
        }
    }
}

impl Console {
    /// What the header shows.
    pub(super) fn who(&self) -> Who<'_> {
        Who {
            account: &self.account,
            role: self.role,
            csrf: &self.csrf,
        }
    }

    /// The caller, if its role grants `permission` (the API's 403
    /// otherwise).
    pub(super) fn may(
        &self,
        state: &AppState,
        permission: Permission,
    ) -> Result<super::Caller, ApiError> {
        state
            .accounts
            .check(Some(&self.credential), permission)
            .map(|(account, role)| super::Caller { account, role })
            .map_err(|error| ApiError {
                status: 403,
                code: "forbidden",
                message: error.to_string(),
            })
    }

    /// Checks a form's anti-forgery token.
    pub(super) fn check_csrf(&self, fields: &Fields) -> Result<(), ApiError> {
        if fields.get("csrf") == Some(self.csrf.as_str()) {
            Ok(())
        } else {
            Err(ApiError {
                status: 403,
                code: "bad_csrf",
                message: "the form is not one this session gave: reload the page and send it again"
                    .into(),
            })
        }
    }

    /// A page of the console.
    pub(super) fn page(&self, title: &str, body: Markup) -> Response {
        page(self.lang, title, &self.path, Some(self.who()), body).into_response()
    }

    /// The hidden anti-forgery field of a form.
    pub(super) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// A field's label, input and, when it was refused, its error (tied to
/// the input for screen readers).
pub(super) fn field(
    name: &str,
    label: &str,
    input: Markup,
    error: Option<&str>,
    hint: Option<&str>,
) -> Markup {
    html! {
        div class={ "field" @if error.is_some() { " invalid" } } {
            label for=(name) { (label) }
            (input)
            @if let Some(hint) = hint { small id={ (name) "-hint" } { (hint) } }
            @if let Some(error) = error {
                small class="error" id={ (name) "-error" } role="alert" { (error) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_names_only_its_own_fields_and_keeps_repeated_ones() {
        let fields = Fields::parse(
            b"csrf=abc&measures=a&measures=b&name=+Wang%20Wei+&empty=",
            &["csrf", "measures", "name", "empty"],
        )
        .expect("parses");
        assert_eq!(fields.get("name"), Some("Wang Wei"));
        assert_eq!(fields.all("measures"), ["a", "b"]);
        assert_eq!(fields.get("empty"), None, "an empty field is not given");
        let missing = fields.need("empty").expect_err("required");
        assert_eq!(missing.message, "empty: required");
        let unknown = Fields::parse(b"csrf=abc&admin=1", &["csrf"])
            .err()
            .expect("refused");
        assert_eq!(unknown.code, "bad_field");
        assert!(unknown.message.starts_with("admin:"), "{}", unknown.message);
        let many = "a=1&".repeat(FORM_FIELDS_MAX + 1);
        assert!(Fields::parse(many.as_bytes(), &["a"]).is_err());
    }

    #[test]
    fn cookies_and_languages_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "other=1; credence_lang=en; credence_session=abc"
                .parse()
                .expect("header"),
        );
        assert_eq!(cookie(&headers, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(status_name(Lang::Zh, "suspended"), "暂停（异议处理中）");
        assert_eq!(status_name(Lang::En, "suspended"), "suspended");
        assert_eq!(kind_name(Lang::Zh, "rule"), "异议裁决");
        assert_eq!(kind_name(Lang::En, "rule"), "rule");
        assert_eq!(urlencode("a b/中"), "a%20b/%E4%B8%AD");
    }

    #[test]
    fn sessions_end_and_are_bounded() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions
            .open("operator.secret".into(), now)
            .expect("opened");
        assert!(sessions.get(&id, now).is_some());
        assert!(sessions.get(&id, now + SESSION_TTL).is_none(), "expired");
        sessions.close(&id);
        assert!(sessions.get(&id, now).is_none(), "closed");
        for _ in 0..SESSIONS_MAX {
            sessions.open("a.b".into(), now).expect("room");
        }
        let full = sessions.open("a.b".into(), now).expect_err("full");
        assert_eq!(full.status, 503);
        // Expired sessions make room.
        assert!(sessions.open("a.b".into(), now + SESSION_TTL).is_ok());
    }
}
