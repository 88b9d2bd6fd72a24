//! Listing users page by page: one page, and the full listing as a stream that restarts on an expired cursor.

use futures::stream::{BoxStream, StreamExt};

use super::send::Call;
use super::{decode, CliqClient, ListEvent, MAX_LIST_RESTARTS};
use crate::cliq::error::{decode_value, BodyError, CliqError, RequestContext};
use crate::cliq::models::{ListUsersParams, RawUsersPage, UsersPage};
use crate::cliq::Endpoint;

/// A listing page: where the next one starts.
trait Paged {
    /// `None` on the last page.
    fn next_token(&self) -> Option<&str>;
}

impl Paged for UsersPage {
    fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }
}

impl Paged for RawUsersPage {
    fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }
}

impl CliqClient {
    /// `GET /users`: one page. `next_token` continues a listing (the same
    /// params are sent again with it).
    pub async fn list_users_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
    ) -> Result<UsersPage, CliqError> {
        self.users_page(params, next_token, false).await
    }

    /// `ahead`: a page of a listing that goes on after it (see `Call::ahead`).
    async fn users_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
        ahead: bool,
    ) -> Result<UsersPage, CliqError> {
        let (v, date) = self
            .execute_dated(self.list_call(params, next_token, ahead), decode_value)
            .await?;
        let mut page = UsersPage::from_owned(v).map_err(|e| decode(Endpoint::ListUsers, e))?;
        page.server_date = date;
        Ok(page)
    }

    /// As [`CliqClient::list_users_page`], each user kept as the JSON text
    /// received (what a pull stores).
    pub async fn list_users_raw_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
    ) -> Result<RawUsersPage, CliqError> {
        self.raw_users_page(params, next_token, false).await
    }

    async fn raw_users_page(
        &self,
        params: &ListUsersParams,
        next_token: Option<&str>,
        ahead: bool,
    ) -> Result<RawUsersPage, CliqError> {
        let call = self.list_call(params, next_token, ahead);
        let (mut page, date) = self
            .execute_dated(call, |body| {
                RawUsersPage::from_slice(body).map_err(BodyError::from)
            })
            .await?;
        page.server_date = date;
        Ok(page)
    }

    fn list_call(&self, params: &ListUsersParams, next_token: Option<&str>, ahead: bool) -> Call {
        let cfg = &self.inner.cfg;
        let mut query = params.to_query(cfg.modified_after_format);
        if params.limit.is_none() {
            query.push(("limit", cfg.page_size.clamp(1, 100).to_string()));
        }
        if let Some(t) = next_token {
            query.push(("next_token", t.to_string()));
        }
        Call {
            ep: Endpoint::ListUsers,
            method: http::Method::GET,
            path: "/users".into(),
            query,
            body: None,
            ahead,
            ctx: RequestContext {
                had_cursor: next_token.is_some(),
                ..Default::default()
            },
        }
    }

    /// `GET /users`, every page: follows cursors to the last page. An expired
    /// cursor yields [`ListEvent::Restarted`] and the listing starts again
    /// from page one (at most [`MAX_LIST_RESTARTS`] times). The stream ends
    /// after the last page or after the first error.
    pub fn list_users(
        &self,
        params: ListUsersParams,
    ) -> BoxStream<'static, Result<ListEvent, CliqError>> {
        self.paginate(params, |client, params, cursor| async move {
            client.users_page(&params, cursor.as_deref(), true).await
        })
    }

    /// As [`CliqClient::list_users`], with [`RawUsersPage`]s.
    pub fn list_users_raw(
        &self,
        params: ListUsersParams,
    ) -> BoxStream<'static, Result<ListEvent<RawUsersPage>, CliqError>> {
        self.paginate(params, |client, params, cursor| async move {
            client
                .raw_users_page(&params, cursor.as_deref(), true)
                .await
        })
    }

    fn paginate<P, F, Fut>(
        &self,
        params: ListUsersParams,
        fetch: F,
    ) -> BoxStream<'static, Result<ListEvent<P>, CliqError>>
    where
        P: Paged + Send + 'static,
        F: Fn(CliqClient, ListUsersParams, Option<String>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<P, CliqError>> + Send + 'static,
    {
        let st = Listing {
            client: self.clone(),
            params,
            cursor: None,
            restarts: 0,
            done: false,
            fetch,
        };
        futures::stream::unfold(st, Listing::step).boxed()
    }
}

/// Where a listing stands between pages.
struct Listing<F> {
    client: CliqClient,
    params: ListUsersParams,
    cursor: Option<String>,
    restarts: u32,
    done: bool,
    fetch: F,
}

impl<F> Listing<F> {
    /// Fetch the next page (or restart on an expired cursor); `None` once
    /// the listing is over.
    async fn step<P, Fut>(self) -> Option<(Result<ListEvent<P>, CliqError>, Self)>
    where
        P: Paged,
        F: Fn(CliqClient, ListUsersParams, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<P, CliqError>>,
    {
        let mut s = self;
        if s.done {
            return None;
        }
        let res = (s.fetch)(s.client.clone(), s.params.clone(), s.cursor.clone()).await;
        if !matches!(&res, Ok(page) if page.next_token().is_some()) {
            // No next page to send (the last page, or an error ends or
            // restarts the listing): the start taken ahead for it goes back.
            s.client.give_back_ahead().await;
        }
        match res {
            Ok(page) => {
                if page.next_token().is_some() && page.next_token() == s.cursor.as_deref() {
                    s.done = true;
                    let e = CliqError::Decode {
                        endpoint: Endpoint::ListUsers,
                        message: "the listing cursor did not advance (same next_token twice)"
                            .into(),
                    };
                    return Some((Err(e), s));
                }
                s.cursor = page.next_token().map(str::to_owned);
                s.done = page.next_token().is_none();
                Some((Ok(ListEvent::Page(page)), s))
            }
            Err(CliqError::ExpiredCursor { message, .. }) if s.restarts < MAX_LIST_RESTARTS => {
                s.restarts += 1;
                s.cursor = None;
                tracing::warn!(
                    restart = s.restarts,
                    %message,
                    "listing cursor expired; restarting the listing from the first page"
                );
                Some((Ok(ListEvent::Restarted), s))
            }
            Err(e) => {
                s.done = true;
                Some((Err(e), s))
            }
        }
    }
}
