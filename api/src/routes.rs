//! Every route, declared once: the handler (whose `#[utoipa::path]` gives its method,
//! path and OpenAPI operation) and what a caller needs to reach it. The router, the
//! guard's table and the OpenAPI document all come from [`declare`]; adding a route is
//! one line here. Routes without an operation in the document (the WebSocket and the
//! docs themselves) name their method and path.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::http::Method;
use axum::routing::{MethodRouter, get};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::guard::Needs::{self, Node as OnNode, Open, Project, SignedIn};
use crate::{audit, auth, browser, config, docs, events_ws, handlers, hooks, invocations};
use crate::{memory, openai, triggers};
use crate::{projects, providers, users};
use troupe_node::Node;
use troupe_security::auth::permissions::Permission::*;

type State = Arc<Node>;

/// What each route needs, by method and path as the router matches it.
#[derive(Debug, Default)]
pub struct RouteTable(HashMap<(Method, String), Needs>);

impl RouteTable {
    pub fn needs(&self, method: &Method, path: &str) -> Option<Needs> {
        self.0.get(&(method.clone(), path.to_string())).copied()
    }

    fn insert(&mut self, method: Method, path: &str, needs: Needs) {
        let previous = self.0.insert((method.clone(), path.to_string()), needs);
        // Invariant: a route is declared once; axum itself would refuse the second.
        assert!(previous.is_none(), "{method} {path} is declared twice");
    }
}

/// The router (its state still to give, `/openapi.json` serving the document) and the
/// guard's table.
pub struct Declared {
    pub router: axum::Router<State>,
    pub table: RouteTable,
}

struct Builder {
    router: OpenApiRouter<State>,
    table: RouteTable,
}

impl Builder {
    /// A documented handler: its method and path come from its `#[utoipa::path]`.
    fn doc(mut self, needs: Needs, documented: UtoipaMethodRouter<State>) -> Self {
        for (path, item) in &documented.1.paths {
            for method in methods_of(item) {
                self.table.insert(method, path, needs);
            }
        }
        self.router = self.router.routes(documented);
        self
    }

    /// A handler with no operation in the document.
    fn plain(
        mut self,
        method: Method,
        path: &str,
        needs: Needs,
        handler: MethodRouter<State>,
    ) -> Self {
        self.table.insert(method, path, needs);
        self.router = self.router.route(path, handler);
        self
    }
}

fn methods_of(item: &utoipa::openapi::PathItem) -> Vec<Method> {
    [
        (Method::GET, item.get.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::DELETE, item.delete.is_some()),
        (Method::PATCH, item.patch.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, present)| present.then_some(method))
    .collect()
}

pub fn declare() -> Declared {
    build().0
}

/// The OpenAPI document `/openapi.json` serves.
#[cfg(test)]
pub fn document() -> Arc<utoipa::openapi::OpenApi> {
    build().1
}

fn build() -> (Declared, Arc<utoipa::openapi::OpenApi>) {
    let builder = Builder {
        router: OpenApiRouter::with_openapi(docs::ApiDoc::openapi()),
        table: RouteTable::default(),
    };
    let builder = undocumented(documented(builder));
    let (router, openapi) = builder.router.split_for_parts();
    let openapi = Arc::new(openapi);
    let document = openapi.clone();
    let mut table = builder.table;
    table.insert(Method::GET, "/openapi.json", Open);
    let router = router.route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    );
    (Declared { router, table }, openapi)
}

/// The routes the OpenAPI document describes.
fn documented(builder: Builder) -> Builder {
    builder
        .doc(Open, routes!(handlers::livez))
        .doc(Open, routes!(handlers::readyz))
        .doc(Open, routes!(auth::login))
        .doc(Open, routes!(auth::refresh))
        .doc(Open, routes!(auth::logout))
        .doc(Open, routes!(auth::verify_mfa))
        .doc(Open, routes!(browser::login))
        .doc(Open, routes!(browser::verify_mfa))
        .doc(Open, routes!(browser::refresh))
        .doc(Open, routes!(browser::logout))
        .doc(SignedIn, routes!(auth::enrol_mfa))
        .doc(SignedIn, routes!(auth::confirm_mfa))
        .doc(SignedIn, routes!(auth::remove_mfa))
        .doc(SignedIn, routes!(auth::me))
        .doc(SignedIn, routes!(auth::change_password))
        .doc(SignedIn, routes!(auth::create_key))
        .doc(SignedIn, routes!(auth::list_keys))
        .doc(SignedIn, routes!(auth::revoke_key))
        .doc(SignedIn, routes!(auth::list_sessions))
        .doc(SignedIn, routes!(auth::end_session))
        .doc(Project(WorkflowsCreate), routes!(handlers::create_workflow))
        .doc(Project(WorkflowsView), routes!(handlers::list_workflows))
        .doc(Project(WorkflowsView), routes!(handlers::get_workflow))
        .doc(Project(WorkflowsDelete), routes!(handlers::delete_workflow))
        .doc(Project(WorkflowsExecute), routes!(handlers::start_run))
        .doc(Open, routes!(hooks::push))
        .doc(Project(WorkflowsView), routes!(triggers::list))
        .doc(Project(WorkflowsExecute), routes!(triggers::pause))
        .doc(Project(WorkflowsExecute), routes!(triggers::resume))
        .doc(Project(WorkflowsView), routes!(handlers::list_runs))
        .doc(Project(WorkflowsView), routes!(handlers::get_run))
        .doc(Project(WorkflowsView), routes!(handlers::get_run_events))
        .doc(Project(WorkflowsExecute), routes!(handlers::cancel_run))
        .doc(Project(WorkflowsExecute), routes!(handlers::retry_run))
        .doc(Project(WorkflowsExecute), routes!(handlers::migrate_run))
        .doc(Project(WorkflowsApprove), routes!(handlers::decide))
        .doc(Project(WorkflowsView), routes!(handlers::list_approvals))
        .doc(OnNode(UsersManage), routes!(users::create))
        .doc(OnNode(UsersManage), routes!(users::list))
        .doc(OnNode(UsersManage), routes!(users::disable))
        .doc(OnNode(UsersManage), routes!(users::reset_mfa))
        .doc(SignedIn, routes!(projects::list))
        .doc(OnNode(ProjectsCreate), routes!(projects::create))
        .doc(Project(ProjectsRead), routes!(projects::get))
        .doc(Project(ProjectsUpdate), routes!(projects::set_member))
        .doc(Project(ProjectsUpdate), routes!(projects::remove_member))
        .doc(Project(ProjectsRead), routes!(projects::get_policy))
        .doc(Project(AgentsConfigure), routes!(projects::set_policy))
        .doc(Project(ProjectsRead), routes!(memory::list))
        .doc(Project(MemoryManage), routes!(memory::create))
        .doc(Project(ProjectsRead), routes!(memory::search))
        .doc(Project(MemoryManage), routes!(memory::delete))
        .doc(OnNode(AgentsView), routes!(handlers::list_agents))
        .doc(Project(WorkflowsExecute), routes!(invocations::invoke))
        .doc(Project(WorkflowsView), routes!(invocations::get))
        .doc(OnNode(AgentsView), routes!(handlers::list_pools))
        .doc(OnNode(AgentsView), routes!(handlers::list_cluster))
        .doc(OnNode(AuditRead), routes!(audit::export))
        .doc(OnNode(AuditRead), routes!(audit::verify))
        .doc(OnNode(AgentsView), routes!(openai::loaded_models))
        .doc(OnNode(AgentsExecute), routes!(providers::complete))
        .doc(OnNode(CostsView), routes!(providers::costs))
        .doc(OnNode(MetricsRead), routes!(handlers::metrics))
        .doc(OnNode(AgentsView), routes!(handlers::alerts))
        .doc(OnNode(SettingsManage), routes!(config::show))
        .doc(OnNode(SettingsManage), routes!(config::reload))
        .doc(OnNode(AgentsView), routes!(openai::list_models))
        .doc(OnNode(AgentsExecute), routes!(openai::chat_completions))
        .doc(OnNode(AgentsExecute), routes!(openai::embeddings))
        .doc(OnNode(AgentsExecute), routes!(openai::anthropic_messages))
}

/// The event WebSocket and the docs page.
fn undocumented(builder: Builder) -> Builder {
    builder
        .plain(
            Method::GET,
            "/api/v1/events",
            Project(WorkflowsView),
            get(events_ws::subscribe),
        )
        .plain(Method::GET, "/docs", Open, get(docs::docs_page))
        .plain(Method::GET, "/docs.js", Open, get(docs::docs_script))
}
