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

use crate::auth::permissions::{self, Permission, Role};
use troupe_store::{ApiKeyRecord, DEFAULT_ORG, DEFAULT_PROJECT, ProjectId, UserRecord};

/// An authenticated caller with its memberships (project → role).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRecord,
    /// Set when the caller came in with an API key.
    pub key: Option<ApiKeyRecord>,
    pub memberships: BTreeMap<ProjectId, Role>,
    /// For an `org_owner`: the projects of its organisation.
    pub org_projects: BTreeSet<ProjectId>,
    /// A role of the caller needs a second factor and the account has none: it may
    /// only enrol one (`auth.require_mfa_for`).
    pub mfa_missing: bool,
}

/// What a check concluded: the caller cannot see the project at all (answer as if the
/// object did not exist), or sees it but lacks the permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Hidden,
    Lacks { permission: Permission, role: Role },
}

impl Principal {
    fn reaches_every_project(&self) -> bool {
        self.user.role == Role::SuperAdmin
    }

    /// Projects where the account role itself applies, without a membership.
    fn account_role_applies(&self, project: &str) -> bool {
        let in_default_org = self.user.org == DEFAULT_ORG;
        self.reaches_every_project()
            || (project == DEFAULT_PROJECT && in_default_org)
            || (self.user.role == Role::OrgOwner && self.org_projects.contains(project))
    }

    pub fn email(&self) -> &str {
        &self.user.email
    }

    /// The role the caller acts with in `project`; `None`: not a member.
    pub fn role_in(&self, project: &str) -> Option<Role> {
        if let Some(key) = &self.key
            && !key.projects.is_empty()
            && !key.projects.iter().any(|allowed| allowed == project)
        {
            return None;
        }
        if self.account_role_applies(project) {
            return Some(self.user.role);
        }
        self.memberships.get(project).copied()
    }

    fn key_allows(&self, permission: Permission) -> bool {
        self.key
            .as_ref()
            .is_none_or(|key| key.scopes.contains(&permission))
    }

    /// `permission` in `project`.
    pub fn check(&self, permission: Permission, project: &str) -> Result<(), Denied> {
        let role = self.role_in(project).ok_or(Denied::Hidden)?;
        if permissions::holds(role, permission) && self.key_allows(permission) {
            Ok(())
        } else {
            Err(Denied::Lacks { permission, role })
        }
    }

    /// A node-wide `permission`.
    pub fn check_node(&self, permission: Permission) -> Result<(), Denied> {
        if permissions::holds(self.user.role, permission) && self.key_allows(permission) {
            Ok(())
        } else {
            Err(Denied::Lacks {
                permission,
                role: self.user.role,
            })
        }
    }

    /// Whether `permission` is held in some project: the route guard's first check, before
    /// the handler checks the object's own project.
    pub fn holds_anywhere(&self, permission: Permission) -> bool {
        self.projects_with(permission)
            .is_none_or(|projects| !projects.is_empty())
    }

    /// The projects where `permission` is held; `None`: every project.
    pub fn projects_with(&self, permission: Permission) -> Option<Vec<ProjectId>> {
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
        let candidates = std::iter::once(ProjectId::from(DEFAULT_PROJECT))
            .chain(self.memberships.keys().cloned())
            .chain(self.org_projects.iter().cloned())
            .chain(self.key.iter().flat_map(|key| key.projects.clone()));
        let mut projects: Vec<ProjectId> = candidates
            .filter(|project| self.check(permission, project.as_str()).is_ok())
            .collect();
        projects.sort();
        projects.dedup();
        Some(projects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> UserRecord {
        UserRecord {
            user_id: "u1".into(),
            email: "ada@example.com".into(),
            role,
            disabled: false,
            must_change_password: false,
            created_at_ms: 0,
            org: DEFAULT_ORG.into(),
            password_hash: String::new(),
        }
    }

    fn principal(role: Role, memberships: &[(&str, Role)]) -> Principal {
        Principal {
            user: user(role),
            key: None,
            memberships: memberships
                .iter()
                .map(|(project, role)| (ProjectId::from(*project), *role))
                .collect(),
            org_projects: BTreeSet::new(),
            mfa_missing: false,
        }
    }

    fn key(scopes: &[Permission], projects: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: "k".into(),
            name: "ci".into(),
            user_id: "u1".into(),
            scopes: scopes.to_vec(),
            projects: projects.iter().map(|s| ProjectId::from(*s)).collect(),
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
        let bob = principal(Role::Developer, &[("shop", Role::Developer)]);
        assert_eq!(
            bob.check(Permission::WorkflowsView, "bank"),
            Err(Denied::Hidden)
        );
        assert_eq!(bob.check(Permission::WorkflowsExecute, "shop"), Ok(()));
        assert_eq!(
            bob.check(Permission::WorkflowsExecute, DEFAULT_PROJECT),
            Ok(())
        );
        assert_eq!(
            bob.projects_with(Permission::WorkflowsView),
            Some(vec!["default".into(), "shop".into()])
        );
    }

    #[test]
    fn the_membership_role_decides_inside_a_project() {
        // A viewer account made reviewer of one project approves there and nowhere else.
        let carol = principal(Role::Viewer, &[("shop", Role::Reviewer)]);
        assert_eq!(carol.check(Permission::WorkflowsApprove, "shop"), Ok(()));
        assert_eq!(
            carol.check(Permission::WorkflowsApprove, DEFAULT_PROJECT),
            Err(Denied::Lacks {
                permission: Permission::WorkflowsApprove,
                role: Role::Viewer
            })
        );
        assert!(carol.holds_anywhere(Permission::WorkflowsApprove));
        assert!(!carol.holds_anywhere(Permission::WorkflowsDelete));
        let dev = principal(Role::Developer, &[("shop", Role::Viewer)]);
        assert_eq!(
            dev.check(Permission::WorkflowsExecute, "shop"),
            Err(Denied::Lacks {
                permission: Permission::WorkflowsExecute,
                role: Role::Viewer
            })
        );
    }

    #[test]
    fn org_owners_reach_their_organisations_projects_and_node_permissions_follow_the_account() {
        let mut owner = principal(Role::OrgOwner, &[]);
        owner.org_projects = BTreeSet::from(["shop".into()]);
        assert_eq!(owner.check(Permission::WorkflowsDelete, "shop"), Ok(()));
        assert_eq!(
            owner.check(Permission::WorkflowsView, "elsewhere"),
            Err(Denied::Hidden)
        );
        assert_eq!(
            owner.projects_with(Permission::WorkflowsView),
            Some(vec!["default".into(), "shop".into()])
        );
        let admin = principal(Role::SuperAdmin, &[]);
        assert_eq!(admin.check(Permission::WorkflowsDelete, "anything"), Ok(()));
        assert_eq!(admin.projects_with(Permission::WorkflowsView), None);
        // An account of another organisation is not in the default project.
        let mut outsider = principal(Role::OrgOwner, &[]);
        outsider.user.org = "acme".into();
        assert_eq!(
            outsider.check(Permission::WorkflowsView, DEFAULT_PROJECT),
            Err(Denied::Hidden)
        );
        assert_eq!(
            outsider.projects_with(Permission::WorkflowsView),
            Some(vec![])
        );
        assert_eq!(owner.check_node(Permission::UsersManage), Ok(()));
        let member = principal(Role::Viewer, &[("shop", Role::ProjectOwner)]);
        assert_eq!(
            member.check_node(Permission::AuditRead),
            Err(Denied::Lacks {
                permission: Permission::AuditRead,
                role: Role::Viewer
            })
        );
        assert_eq!(member.check_node(Permission::CostsView), Ok(()));
    }

    #[test]
    fn a_key_narrows_its_owner_to_its_scopes_and_projects() {
        let mut admin = principal(Role::SuperAdmin, &[]);
        admin.key = Some(key(
            &[Permission::WorkflowsView, Permission::WorkflowsExecute],
            &["shop"],
        ));
        assert_eq!(admin.check(Permission::WorkflowsExecute, "shop"), Ok(()));
        assert_eq!(
            admin.check(Permission::WorkflowsView, "bank"),
            Err(Denied::Hidden)
        );
        assert_eq!(
            admin.check(Permission::WorkflowsView, DEFAULT_PROJECT),
            Err(Denied::Hidden)
        );
        let outside_the_scopes = |permission| Denied::Lacks {
            permission,
            role: Role::SuperAdmin,
        };
        assert_eq!(
            admin.check(Permission::WorkflowsDelete, "shop"),
            Err(outside_the_scopes(Permission::WorkflowsDelete))
        );
        assert_eq!(
            admin.check_node(Permission::AuditRead),
            Err(outside_the_scopes(Permission::AuditRead))
        );
        assert_eq!(
            admin.projects_with(Permission::WorkflowsView),
            Some(vec!["shop".into()])
        );
        let mut everywhere = principal(Role::Developer, &[]);
        everywhere.key = Some(key(&[Permission::WorkflowsView], &[]));
        assert_eq!(
            everywhere.check(Permission::WorkflowsView, DEFAULT_PROJECT),
            Ok(())
        );
        assert_eq!(
            everywhere.check(Permission::WorkflowsExecute, DEFAULT_PROJECT),
            Err(Denied::Lacks {
                permission: Permission::WorkflowsExecute,
                role: Role::Developer
            })
        );
    }
}
