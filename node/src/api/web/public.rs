//! The public portal: no login, only what the publicity feed shows,
//! natural persons masked.

use super::{Lang, date, error_page, page, urlencode};
use crate::api::{ApiError, AppState, Params, ask};
use crate::daemon::{Command, FeedAsk, FeedFilter, PublicAsk};
use crate::views::{FeedItem, ListingView, feed_cursor_of, parse_feed_cursor};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use credence_protocol::fold::ListingState;
use credence_protocol::identifiers;
use credence_protocol::model::{ListKind, NoticeId, SubjectKey, SubjectKind};
use credence_protocol::roster::Federation;
use credence_protocol::time::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/lists/{list}", get(list_page))
        .route("/listings/{id}", get(listing))
        .route("/members", get(members))
}

/// Listings a page of a list shows.
pub const LIST_PAGE: usize = 50;
/// Listings a name search shows at most.
pub const SEARCH_SHOWN: usize = 50;

fn search_form(lang: Lang, q: &str) -> Markup {
    html! {
        form class="search" method="get" action="/search" role="search" {
            label for="q" { (lang.t("统一社会信用代码、身份证号码或名称", "Unified social credit code, identity number or name")) }
            input id="q" name="q" type="search" value=(q) required minlength="2" maxlength="64"
                aria-describedby="q-hint";
            small id="q-hint" { (lang.t("身份证号码只显示前六位和后四位；名称可只输入一部分。", "Identity numbers are shown masked (first six and last four characters); a name may be given in part.")) }
            button type="submit" { (lang.t("查询", "Search")) }
        }
    }
}

async fn home(lang: Lang) -> Response {
    let t = |zh, en| lang.t(zh, en);
    page(
        lang,
        t("信用信息公示与查询", "Credit information: publicity and inquiry"),
        "/",
        None,
        html! {
            p { (t("本节点公示联盟成员依法作出的红名单、黑名单认定，只显示公示期内且未被暂停、修复或撤销的记录。",
                   "This node publishes the red and black list decisions of the federation's members: only listings within their publication period that are not suspended, repaired or withdrawn.")) }
            (search_form(lang, ""))
            ul class="cards" {
                li { a href="/lists/black" { (t("黑名单（失信）", "Blacklist (serious dishonesty)")) } }
                li { a href="/lists/red" { (t("红名单（守信）", "Red list (model conduct)")) } }
                li { a href="/members" { (t("联盟成员及其认定范围", "Members and what each may list")) } }
            }
        },
    )
    .into_response()
}

/// The public table of listings.
fn table(lang: Lang, items: &[FeedItem]) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    html! {
        @if items.is_empty() {
            p class="empty" { (t("没有找到公示中的记录。", "No published listing found.")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (t("名称", "Name")) }
                    th scope="col" { (t("证照号码", "Identifier")) }
                    th scope="col" { (t("名单", "List")) }
                    th scope="col" { (t("类别", "Category")) }
                    th scope="col" { (t("认定单位", "Decided by")) }
                    th scope="col" { (t("生效日期", "Effective")) }
                    th scope="col" { (t("公示截止", "Published until")) }
                } }
                tbody {
                    @for item in items {
                        tr {
                            td { a href={ "/listings/" (item.id) } { (item.subject.name) } }
                            td { code { (item.subject.id) } }
                            td { (list_name(lang, item.list)) @if item.corrected_at.is_some() { " · " (t("已更正", "corrected")) } }
                            td { (item.category) }
                            td { (item.issuer_name) }
                            td { (date(item.effective_at)) }
                            td { (date(item.publish_until)) }
                        }
                    }
                }
            }
        }
    }
}

fn list_name(lang: Lang, list: ListKind) -> &'static str {
    match list {
        ListKind::Black => lang.t("黑名单", "Blacklist"),
        ListKind::Red => lang.t("红名单", "Red list"),
    }
}

fn items(federation: &Federation, states: &[ListingState]) -> Vec<FeedItem> {
    let now = crate::node::now();
    states
        .iter()
        .filter_map(|s| FeedItem::of(federation, s, now))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    q: Option<String>,
}

/// An identifier searched for whose check character does not match the
/// rest: looked up all the same (a pilot code's listing is published
/// under it), with a warning that a mistyped one finds nothing.
#[derive(Debug, PartialEq, Eq)]
struct CheckMismatch {
    found: char,
    expected: char,
}

/// What a search text asks for: an identifier (18 letters and digits) or
/// a name; for an identifier that fails only its check character, also
/// the mismatch to warn of.
fn search_ask(q: &str) -> Result<(Vec<PublicAsk>, Option<CheckMismatch>), String> {
    use credence_protocol::identifiers::IdentifierError;
    if q.len() == 18 && q.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let upper = q.to_ascii_uppercase();
        let uscc = identifiers::check_uscc(&upper);
        let resident = identifiers::check_resident_id(&upper);
        let mismatch = |checked: &Result<(), IdentifierError>| match checked {
            Err(IdentifierError::Checksum {
                found_check,
                expected,
                ..
            }) => Some(CheckMismatch {
                found: *found_check,
                expected: *expected,
            }),
            _ => None,
        };
        let digits = upper.bytes().take(17).all(|b| b.is_ascii_digit());
        let (kinds, warning): (&[SubjectKind], _) = match (&uscc, &resident) {
            (Ok(()), _) => (
                &[SubjectKind::LegalPerson, SubjectKind::OtherOrganisation],
                None,
            ),
            (_, Ok(())) => (&[SubjectKind::NaturalPerson], None),
            // Seventeen digits read as a resident identity number first.
            (_, Err(_)) if digits && mismatch(&resident).is_some() => {
                (&[SubjectKind::NaturalPerson], mismatch(&resident))
            }
            (Err(_), Err(r)) if digits => return Err(r.to_string()),
            (Err(_), _) if mismatch(&uscc).is_some() => (
                &[SubjectKind::LegalPerson, SubjectKind::OtherOrganisation],
                mismatch(&uscc),
            ),
            (Err(e), _) => return Err(e.to_string()),
        };
        return Ok((
            kinds
                .iter()
                .filter_map(|kind| SubjectKey::new(*kind, &upper))
                .map(PublicAsk::Subject)
                .collect(),
            warning,
        ));
    }
    let text = credence_protocol::names::search_text(q).map_err(|e| e.to_string())?;
    Ok((vec![PublicAsk::Name(text, SEARCH_SHOWN)], None))
}

async fn search(
    State(state): State<AppState>,
    lang: Lang,
    Params(params): Params<SearchParams>,
) -> Response {
    let q = params.q.unwrap_or_default();
    let q = q.trim();
    let here = format!("/search?q={}", urlencode(q));
    let title = lang.t("查询结果", "Search results");
    let (asks, mismatch) = match search_ask(q) {
        Ok(asked) => asked,
        Err(message) => {
            let body = html! {
                (search_form(lang, q))
                p class="error" role="alert" { (message) }
            };
            return (
                axum::http::StatusCode::BAD_REQUEST,
                page(lang, title, &here, None, body),
            )
                .into_response();
        }
    };
    let mut found = Vec::new();
    let mut more = false;
    for public in asks {
        match ask(&state, |tx| Command::Public(public, tx)).await {
            Ok((states, m)) => {
                found.extend(states);
                more |= m;
            }
            Err(error) => return error.page(lang),
        }
    }
    let shown = items(&state.federation(), &found);
    page(
        lang,
        title,
        &here,
        None,
        html! {
            (search_form(lang, q))
            @if let Some(m) = &mismatch {
                p class="error" role="alert" {
                    (lang.t("校验码不符", "The check character does not match"))
                    " (" (m.found) " / " (m.expected) "): "
                    (lang.t(
                        "号码若有误，将查不到该主体的记录；以下为以此号码公示的记录。",
                        "if the identifier was mistyped, the subject's listings are not found; these are the listings published under it as typed."
                    ))
                }
            }
            p { (shown.len()) " " (lang.t("条公示记录", "published listing(s)"))
                @if more { " " (lang.t("（仅显示前若干条，请缩小查询范围）", "(only the first are shown: narrow the search)")) } }
            (table(lang, &shown))
        },
    )
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    region: Option<String>,
    category: Option<String>,
    issuer: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

fn some(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The filter a list page's query asks for, or what is wrong with it.
fn list_filter(
    federation: &Federation,
    list: ListKind,
    p: &ListParams,
) -> Result<FeedFilter, ApiError> {
    let day = |field: &str, text: Option<&str>| {
        text.map(|t| {
            Timestamp::parse(t).map_err(|e| ApiError::bad("bad_field", format!("{field}: {e}")))
        })
        .transpose()
    };
    let issuer = some(&p.issuer)
        .map(|text| {
            text.parse()
                .ok()
                .filter(|key| federation.member(key).is_some())
                .ok_or_else(|| {
                    ApiError::bad("bad_field", format!("issuer: {text:?} is not a member"))
                })
        })
        .transpose()?;
    let region = some(&p.region).map(str::to_string);
    if let Some(region) = &region {
        let members = &federation.roster().members;
        if !members.iter().any(|m| m.region == *region) {
            let mut regions: Vec<&str> = members.iter().map(|m| m.region.as_str()).collect();
            regions.sort_unstable();
            regions.dedup();
            return Err(ApiError::bad(
                "bad_field",
                format!(
                    "region: no member lists for {region:?}; the members' regions are {}",
                    regions.join(", ")
                ),
            ));
        }
    }
    let category = some(&p.category).map(str::to_string);
    if let Some(code) = &category
        && federation.category(code).is_none()
    {
        return Err(ApiError::bad(
            "bad_field",
            format!("category: {code:?} is not in the catalog"),
        ));
    }
    Ok(FeedFilter {
        list: Some(list),
        region,
        category,
        issuer,
        since: day("from", some(&p.from))?,
        until: day("to", some(&p.to))?.map(|t| t.plus_ms(credence_protocol::time::DAY_MS)),
    })
}

fn list_kind(text: &str) -> Option<ListKind> {
    match text {
        "black" => Some(ListKind::Black),
        "red" => Some(ListKind::Red),
        _ => None,
    }
}

fn filters_form(lang: Lang, federation: &Federation, list: &str, p: &ListParams) -> Markup {
    let t = |zh, en| lang.t(zh, en);
    let roster = federation.roster();
    let mut regions: Vec<&str> = roster.members.iter().map(|m| m.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let chosen = |value: &Option<String>, option: &str| some(value) == Some(option);
    html! {
        form class="filters" method="get" action={ "/lists/" (list) } {
            div class="field" {
                label for="region" { (t("地区", "Region")) }
                select id="region" name="region" {
                    option value="" { (t("全部", "All")) }
                    @for region in &regions {
                        option value=(region) selected[chosen(&p.region, region)] { (region) }
                    }
                }
            }
            div class="field" {
                label for="category" { (t("类别", "Category")) }
                select id="category" name="category" {
                    option value="" { (t("全部", "All")) }
                    @for c in &roster.categories {
                        option value=(c.code) selected[chosen(&p.category, &c.code)] { (c.name) " (" (c.code) ")" }
                    }
                }
            }
            div class="field" {
                label for="issuer" { (t("认定单位", "Department")) }
                select id="issuer" name="issuer" {
                    option value="" { (t("全部", "All")) }
                    @for m in &roster.members {
                        @let key = m.key.to_string();
                        option value=(key) selected[chosen(&p.issuer, &key)] { (m.name) " · " (m.department) }
                    }
                }
            }
            div class="field" {
                label for="from" { (t("生效日期自", "Effective from")) }
                input id="from" name="from" type="date" value=[some(&p.from)];
            }
            div class="field" {
                label for="to" { (t("生效日期至", "Effective to")) }
                input id="to" name="to" type="date" value=[some(&p.to)];
            }
            button type="submit" { (t("筛选", "Filter")) }
        }
    }
}

async fn list_page(
    State(state): State<AppState>,
    lang: Lang,
    Path(list): Path<String>,
    Params(params): Params<ListParams>,
) -> Response {
    let Some(kind) = list_kind(&list) else {
        return error_page(lang, 404, "no such list: black or red");
    };
    let title = list_name(lang, kind);
    let filter = match list_filter(&state.federation(), kind, &params) {
        Ok(filter) => filter,
        Err(error) => return error.page(lang),
    };
    let after = match some(&params.after).map(parse_feed_cursor).transpose() {
        Ok(after) => after,
        Err(message) => return ApiError::bad("bad_field", message).page(lang),
    };
    let ask_for = FeedAsk {
        after,
        limit: LIST_PAGE,
        filter,
    };
    let feed = match ask(&state, |tx| Command::Feed(ask_for, tx)).await {
        Ok(feed) => feed,
        Err(error) => return error.page(lang),
    };
    let shown = items(&state.federation(), &feed.listings);
    let query = |after: Option<String>| {
        let mut parts = Vec::new();
        for (name, value) in [
            ("region", &params.region),
            ("category", &params.category),
            ("issuer", &params.issuer),
            ("from", &params.from),
            ("to", &params.to),
        ] {
            if let Some(v) = some(value) {
                parts.push(format!("{name}={}", urlencode(v)));
            }
        }
        if let Some(after) = after {
            parts.push(format!("after={after}"));
        }
        parts.join("&")
    };
    let here = format!("/lists/{list}?{}", query(params.after.clone()));
    let next = feed
        .more
        .then_some(feed.last)
        .flatten()
        .map(|(at, id)| format!("/lists/{list}?{}", query(Some(feed_cursor_of(at, &id)))));
    page(
        lang,
        title,
        &here,
        None,
        html! {
            (filters_form(lang, &state.federation(), &list, &params))
            (table(lang, &shown))
            nav class="pager" aria-label=(lang.t("翻页", "Pages")) {
                @if params.after.is_some() { a href={ "/lists/" (list) "?" (query(None)) } { (lang.t("第一页", "First page")) } }
                @if let Some(next) = next { a rel="next" href=(next) { (lang.t("下一页", "Next page")) } }
            }
        },
    )
    .into_response()
}

async fn listing(State(state): State<AppState>, lang: Lang, Path(id): Path<String>) -> Response {
    let t = |zh, en| lang.t(zh, en);
    let Ok(id) = id.parse::<NoticeId>() else {
        return ApiError::bad(
            "bad_field",
            format!("id: {id:?} is not a notice id (64 hex digits)"),
        )
        .page(lang);
    };
    let states = match ask(&state, |tx| Command::Public(PublicAsk::Listing(id), tx)).await {
        Ok((states, _)) => states,
        Err(error) => return error.page(lang),
    };
    let now = crate::node::now();
    let Some((state_of, item)) = states
        .first()
        .and_then(|s| FeedItem::of(&state.federation(), s, now).map(|item| (s, item)))
    else {
        return error_page(
            lang,
            404,
            t(
                "该记录不在公示中：可能已暂停（有异议待处理）、已修复、已撤销或公示期已满。",
                "This listing is not published: it may be suspended by an objection, repaired, withdrawn or past its publication period.",
            ),
        );
    };
    let view = ListingView::new(&state.federation(), state_of, true);
    let l = &state_of.listing;
    let measure = |code: &String| {
        state
            .federation()
            .measure(code)
            .map_or_else(|| code.clone(), |m| format!("{} ({code})", m.name))
    };
    let category = state.federation().category(&l.category).map_or_else(
        || l.category.clone(),
        |c| format!("{} ({})", c.name, c.code),
    );
    page(
        lang,
        &item.subject.name,
        &format!("/listings/{id}"),
        None,
        html! {
            @if let Some(at) = item.corrected_at {
                p class="notice" role="status" { (t("公开更正：本记录已于 ", "Public correction: this listing was corrected on ")) (date(at)) (t(" 更正。", ".")) }
            }
            dl class="record" {
                dt { (t("证照号码", "Identifier")) } dd { code { (item.subject.id) } }
                dt { (t("名单", "List")) } dd { (list_name(lang, item.list)) }
                dt { (t("状态", "Status")) } dd { (super::status_name(lang, &view.status)) }
                dt { (t("类别", "Category")) } dd { (category) }
                dt { (t("认定单位", "Decided by")) } dd { (item.issuer_name) }
                dt { (t("事由", "Reason")) } dd { (item.reason) }
                dt { (t("法律依据", "Legal basis")) } dd { (item.legal_basis) }
                dt { (t("决定文书号", "Decision number")) } dd { (item.document_number) }
                dt { (t("措施", "Measures")) } dd {
                    @if l.measures.is_empty() { (t("无", "none")) }
                    @else { ul { @for code in &l.measures { li { (measure(code)) } } } }
                }
                dt { (t("生效日期", "Effective")) } dd { (date(item.effective_at)) }
                dt { (t("公示截止", "Published until")) } dd { (date(item.publish_until)) }
                dt { (t("最早可修复日期", "Repair possible from")) } dd { (date(l.repair_from.0)) }
                @for person in &item.linked {
                    dt { (person.role.name().replace('-', " ")) } dd { (person.name) " " code { (person.id) } }
                }
            }
            h2 { (t("历史", "History")) }
            ol class="history" {
                @for h in view.history.iter().flatten() {
                    li { (date(h.issued_at)) " · " (super::kind_name(lang, &h.kind)) " · " (h.author_name) }
                }
            }
            p { a href={ "/v1/feed" } { (t("以机器可读格式获取公示数据", "The same data, machine-readable")) } }
        },
    )
    .into_response()
}

async fn members(State(state): State<AppState>, lang: Lang) -> Response {
    let t = |zh, en| lang.t(zh, en);
    let federation = state.federation();
    let roster = federation.roster();
    let names = |codes: &[String]| {
        codes
            .iter()
            .map(|code| {
                state
                    .federation()
                    .category(code)
                    .map_or_else(|| code.clone(), |c| c.name.clone())
            })
            .collect::<Vec<_>>()
            .join("、")
    };
    page(
        lang,
        t("联盟成员", "Members of the federation"),
        "/members",
        None,
        html! {
            p { (roster.name) " · " (roster.members.len()) " " (t("个成员", "members")) }
            table {
                thead { tr {
                    th scope="col" { (t("成员", "Member")) }
                    th scope="col" { (t("地区", "Region")) }
                    th scope="col" { (t("部门", "Department")) }
                    th scope="col" { (t("可认定黑名单类别", "May blacklist")) }
                    th scope="col" { (t("可认定红名单类别", "May red-list")) }
                    th scope="col" { (t("实施的措施", "Implements")) }
                } }
                tbody {
                    @for m in &roster.members {
                        tr {
                            td { (m.name) br; code class="key" { (m.key) } }
                            td { (m.region) }
                            td { (m.department) }
                            td { (names(&m.issues_black)) }
                            td { (names(&m.issues_red)) }
                            td { (m.implements.join(", ")) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_an_identifier_or_a_name() {
        let (asks, warning) = search_ask("91350100M000100Y43").expect("uscc");
        assert_eq!(
            asks.len(),
            2,
            "a USCC is looked up as a legal person and as another organisation"
        );
        assert_eq!(warning, None);
        assert!(matches!(
            search_ask("11010519491231002x").expect("resident id"),
            (ref asks, None) if matches!(asks[..], [PublicAsk::Subject(_)])
        ));
        // A character no USCC has, even as its check character: refused.
        let bad = search_ask("91350100M000100Y4Z").expect_err("bad check character");
        assert!(bad.contains("expected"), "{bad}");
        // A check character that does not match: looked up, with a warning
        // (a pilot code's listing is published under it).
        let (asks, warning) = search_ask("91350100M000100Y44").expect("looked up");
        assert_eq!(asks.len(), 2);
        assert_eq!(
            warning,
            Some(CheckMismatch {
                found: '4',
                expected: '3'
            })
        );
        let (asks, warning) = search_ask("110105194912310021").expect("looked up");
        assert!(matches!(asks[..], [PublicAsk::Subject(_)]));
        assert_eq!(
            warning,
            Some(CheckMismatch {
                found: '1',
                expected: 'X'
            })
        );
        // A birth date that does not exist: refused.
        let bad = search_ask("110105194913310021").expect_err("no such date");
        assert!(bad.contains("birth date"), "{bad}");
        assert!(matches!(
            search_ask("华信").expect("name").0[..],
            [PublicAsk::Name(_, SEARCH_SHOWN)]
        ));
        assert!(search_ask("a").is_err(), "too short to search");
    }

    // A region no member lists for is refused, naming the regions there
    // are; a member's region filters; an empty one is no filter.
    #[test]
    fn a_list_filter_takes_only_a_members_region() {
        let test = credence_protocol::testkit::federation(1, 2);
        let region = test.federation.roster().members[0].region.clone();
        let params = |region: &str| ListParams {
            region: Some(region.into()),
            category: None,
            issuer: None,
            from: None,
            to: None,
            after: None,
        };
        let filter = list_filter(&test.federation, ListKind::Black, &params(&region))
            .expect("a member's region");
        assert_eq!(filter.region, Some(region.clone()));
        let blank = list_filter(&test.federation, ListKind::Black, &params(" ")).expect("blank");
        assert_eq!(blank.region, None);
        let error = list_filter(&test.federation, ListKind::Black, &params("999999"))
            .expect_err("no member's region");
        assert!(
            error.message.starts_with("region:") && error.message.contains(&region),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_back_path_never_leaves_the_site() {
        assert_eq!(
            super::super::local_path(Some("/lists/red?x=1")),
            "/lists/red?x=1"
        );
        assert_eq!(super::super::local_path(Some("//evil.example")), "/");
        assert_eq!(super::super::local_path(Some("https://evil.example")), "/");
        assert_eq!(super::super::local_path(Some("/\\evil")), "/");
        assert_eq!(super::super::local_path(None), "/");
    }
}
