//! The vocabulary of access, as user, membership and API-key rows keep it: the roles an
//! account or a membership holds and the permissions an API key is scoped to. What each
//! role may do is the security crate's rule (`auth::permissions`), not the store's.

use serde::{Deserialize, Serialize};

/// A name that is not one of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{given}` is not one of {known}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub known: String,
}

/// Declares a closed vocabulary once: the enum, its wire names (serde and OpenAPI use
/// the same ones), `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$doc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$doc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        // By hand: the derive does not see a `serde(rename)` that a macro wrote, and would
        // name the variants instead of the words on the wire.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|word| word.as_str())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|word| word.as_str() == text)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        given: text.to_string(),
                        known: Self::ALL.iter().map(|word| word.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

vocabulary! {
    /// Ordered from the weakest to the strongest: each role holds every permission of
    /// the roles before it (`auth::permissions` tests that), so `a < b` reads "a is below b".
    Role ("role") {
        Viewer = "viewer",
        Developer = "developer",
        Reviewer = "reviewer",
        ProjectOwner = "project_owner",
        /// Every project of its organisation.
        OrgOwner = "org_owner",
        /// Every project of the node.
        SuperAdmin = "super_admin",
    }
}

impl Role {
    /// Whether a project membership may hold this role: organisation-wide roles are
    /// account roles only.
    pub fn fits_a_membership(self) -> bool {
        self <= Role::ProjectOwner
    }
}

vocabulary! {
    Permission ("permission") {
        WorkflowsView = "workflows.view",
        WorkflowsCreate = "workflows.create",
        WorkflowsExecute = "workflows.execute",
        WorkflowsApprove = "workflows.approve",
        WorkflowsDelete = "workflows.delete",
        AgentsView = "agents.view",
        AgentsExecute = "agents.execute",
        AgentsConfigure = "agents.configure",
        ProjectsCreate = "projects.create",
        ProjectsRead = "projects.read",
        ProjectsUpdate = "projects.update",
        ProjectsDelete = "projects.delete",
        UsersManage = "users.manage",
        SettingsManage = "settings.manage",
        AuditRead = "audit.read",
        CostsView = "costs.view",
        MemoryManage = "memory.manage",
        /// Scrape `/metrics` (node-wide: activity and spend of every project).
        MetricsRead = "metrics.read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        for permission in Permission::ALL {
            assert_eq!(permission.as_str().parse::<Permission>(), Ok(*permission));
        }
        assert_eq!(Permission::ALL.len(), 18);
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_list() {
        let error = "emperor".parse::<Role>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "role `emperor` is not one of viewer, developer, reviewer, project_owner, \
             org_owner, super_admin"
        );
        let error = serde_json::from_str::<Permission>("\"workflows.rule\"").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown variant `workflows.rule`"),
            "{error}"
        );
    }

    #[test]
    fn only_project_roles_fit_a_membership() {
        let fitting: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|role| role.fits_a_membership())
            .collect();
        assert_eq!(
            fitting,
            [
                Role::Viewer,
                Role::Developer,
                Role::Reviewer,
                Role::ProjectOwner
            ]
        );
    }
}
