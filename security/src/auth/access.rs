//! Who may do what, where. A caller's permissions in a project come from one role:
//! - `super_admin` acts with its account role in every project, `org_owner` in every
//!   project of its organisation;
//! - every account of the default organisation acts with its account role in the
//!   `default` project;
//! - in any other project, with the role of their membership, and not at all without one.
//!
//! Node-wide permissions (costs, audit, users, settings, creating projects) come from
//! the account role. An API key narrows both to its scopes, and to its projects when
//! it names some. Pure, so every rule is tested here without a store.

use std::collections::{BTreeMap, BTreeSet};

use crate::auth::permissions;
use troupe_store::{ApiKeyRecord, DEFAULT_ORG, DEFAULT_PROJECT, UserRecord};

/// An authenticated caller with its memberships (project → role).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    /// Set when the caller came in with an API key.
    pub key: Option<ApiKeyRecord>,
    pub memberships: BTreeMap<String, String>,
    /// For an `org_owner`: the projects of its organisation.
    pub org_projects: BTreeSet<String>,
}

/// What a check concluded: the caller cannot see the project at all (answer as if the
/// object did not exist), or sees it but lacks the permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Hidden,
    Lacks { permission: String, role: String },
}

impl Principal {
    fn reaches_every_project(&self) -> bool {
        self.user.role == "super_admin"
    }

    /// Projects where the account role itself applies, without a membership.
    fn account_role_applies(&self, project: &str) -> bool {
        let in_default_org = self.user.org == DEFAULT_ORG;
        self.reaches_every_project()
            || (project == DEFAULT_PROJECT && in_default_org)
            || (self.user.role == "org_owner" && self.org_projects.contains(project))
    }

    pub fn email(&self) -> &str {
        &self.user.email
    }

    /// The role the caller acts with in `project`; `None`: not a member.
    pub fn role_in(&self, project: &str) -> Option<&str> {
        if let Some(key) = &self.key
            && !key.projects.is_empty()
            && !key.projects.iter().any(|allowed| allowed == project)
        {
            return None;
        }
        if self.account_role_applies(project) {
            return Some(&self.user.role);
        }
        self.memberships.get(project).map(String::as_str)
    }

    fn key_allows(&self, permission: &str) -> bool {
        self.key
            .as_ref()
            .is_none_or(|key| key.scopes.iter().any(|scope| scope == permission))
    }

    /// `permission` in `project`.
    pub fn check(&self, permission: &str, project: &str) -> Result<(), Denied> {
        let role = self.role_in(project).ok_or(Denied::Hidden)?;
        if permissions::of_role(role).contains(&permission) && self.key_allows(permission) {
            Ok(())
        } else {
            Err(Denied::Lacks {
                permission: permission.into(),
                role: role.into(),
            })
        }
    }

    /// A node-wide `permission`.
    pub fn check_node(&self, permission: &str) -> Result<(), Denied> {
        if permissions::of_role(&self.user.role).contains(&permission)
            && self.key_allows(permission)
        {
            Ok(())
        } else {
            Err(Denied::Lacks {
                permission: permission.into(),
                role: self.user.role.clone(),
            })
        }
    }

    /// Whether `permission` is held in some project: the route guard's first check, before
    /// the handler checks the object's own project.
    pub fn holds_anywhere(&self, permission: &str) -> bool {
        self.projects_with(permission)
            .is_none_or(|projects| !projects.is_empty())
    }

    /// The projects where `permission` is held; `None`: every project.
    pub fn projects_with(&self, permission: &str) -> Option<Vec<String>> {
        let keyed = self
            .key
            .as_ref()
            .is_some_and(|key| !key.projects.is_empty());
        if self.reaches_every_project() && !keyed {
            return if self.check(permission, DEFAULT_PROJECT).is_ok() {
                None
            } else {
                Some(Vec::new())
            };
        }
        let candidates = std::iter::once(DEFAULT_PROJECT.to_string())
            .chain(self.memberships.keys().cloned())
            .chain(self.org_projects.iter().cloned())
            .chain(self.key.iter().flat_map(|key| key.projects.clone()));
        let mut projects: Vec<String> = candidates
            .filter(|project| self.check(permission, project).is_ok())
            .collect();
        projects.sort();
        projects.dedup();
        Some(projects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str) -> UserRecord {
        UserRecord {
            user_id: "u1".into(),
            email: "ada@example.com".into(),
            role: role.into(),
            disabled: false,
            must_change_password: false,
            created_at_ms: 0,
            org: DEFAULT_ORG.into(),
            password_hash: String::new(),
        }
    }

    fn principal(role: &str, memberships: &[(&str, &str)]) -> Principal {
        Principal {
            user: user(role),
            key: None,
            memberships: memberships
                .iter()
                .map(|(project, role)| (project.to_string(), role.to_string()))
                .collect(),
            org_projects: BTreeSet::new(),
        }
    }

    fn key(scopes: &[&str], projects: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: "k".into(),
            name: "ci".into(),
            user_id: "u1".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            projects: projects.iter().map(|s| s.to_string()).collect(),
            created_at_ms: 0,
            expires_at_ms: None,
            last_used_ms: None,
            rate_per_minute: None,
            revoked: false,
            secret_hash: String::new(),
        }
    }

    #[test]
    fn a_project_is_hidden_from_those_who_are_not_members() {
        let bob = principal("developer", &[("shop", "developer")]);
        assert_eq!(bob.check("workflows.view", "bank"), Err(Denied::Hidden));
        assert_eq!(bob.check("workflows.execute", "shop"), Ok(()));
        assert_eq!(bob.check("workflows.execute", DEFAULT_PROJECT), Ok(()));
        assert_eq!(
            bob.projects_with("workflows.view"),
            Some(vec!["default".into(), "shop".into()])
        );
    }

    #[test]
    fn the_membership_role_decides_inside_a_project() {
        // A viewer account made reviewer of one project approves there and nowhere else.
        let carol = principal("viewer", &[("shop", "reviewer")]);
        assert_eq!(carol.check("workflows.approve", "shop"), Ok(()));
        assert_eq!(
            carol.check("workflows.approve", DEFAULT_PROJECT),
            Err(Denied::Lacks {
                permission: "workflows.approve".into(),
                role: "viewer".into()
            })
        );
        assert!(carol.holds_anywhere("workflows.approve"));
        assert!(!carol.holds_anywhere("workflows.delete"));
        let dev = principal("developer", &[("shop", "viewer")]);
        assert!(dev.check("workflows.execute", "shop").is_err());
    }

    #[test]
    fn org_owners_reach_their_organisations_projects_and_node_permissions_follow_the_account() {
        let mut owner = principal("org_owner", &[]);
        owner.org_projects = BTreeSet::from(["shop".to_string()]);
        assert_eq!(owner.check("workflows.delete", "shop"), Ok(()));
        assert_eq!(
            owner.check("workflows.view", "elsewhere"),
            Err(Denied::Hidden)
        );
        assert_eq!(
            owner.projects_with("workflows.view"),
            Some(vec!["default".into(), "shop".into()])
        );
        let admin = principal("super_admin", &[]);
        assert_eq!(admin.check("workflows.delete", "anything"), Ok(()));
        assert_eq!(admin.projects_with("workflows.view"), None);
        // An account of another organisation is not in the default project.
        let mut outsider = principal("org_owner", &[]);
        outsider.user.org = "acme".into();
        assert_eq!(
            outsider.check("workflows.view", DEFAULT_PROJECT),
            Err(Denied::Hidden)
        );
        assert_eq!(outsider.projects_with("workflows.view"), Some(vec![]));
        assert_eq!(owner.check_node("users.manage"), Ok(()));
        let member = principal("viewer", &[("shop", "project_owner")]);
        assert!(member.check_node("audit.read").is_err());
        assert_eq!(member.check_node("costs.view"), Ok(()));
    }

    #[test]
    fn a_key_narrows_its_owner_to_its_scopes_and_projects() {
        let mut admin = principal("super_admin", &[]);
        admin.key = Some(key(&["workflows.view", "workflows.execute"], &["shop"]));
        assert_eq!(admin.check("workflows.execute", "shop"), Ok(()));
        assert_eq!(admin.check("workflows.view", "bank"), Err(Denied::Hidden));
        assert_eq!(
            admin.check("workflows.view", DEFAULT_PROJECT),
            Err(Denied::Hidden)
        );
        assert!(admin.check("workflows.delete", "shop").is_err());
        assert!(admin.check_node("audit.read").is_err());
        assert_eq!(
            admin.projects_with("workflows.view"),
            Some(vec!["shop".into()])
        );
        let mut everywhere = principal("developer", &[]);
        everywhere.key = Some(key(&["workflows.view"], &[]));
        assert_eq!(everywhere.check("workflows.view", DEFAULT_PROJECT), Ok(()));
        assert!(
            everywhere
                .check("workflows.execute", DEFAULT_PROJECT)
                .is_err()
        );
    }
}
