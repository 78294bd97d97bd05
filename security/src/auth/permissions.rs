//! What each role holds. Roles form a chain (viewer < developer < reviewer <
//! project_owner < org_owner < super_admin), each holding everything below it, so a
//! permission is held by the weakest role that needs it and every role above. Pure: the
//! route table names the permission each route needs, and API keys are scoped to a
//! subset of their owner's.

pub use troupe_store::{Permission, Role};

/// The weakest role that holds `permission`.
pub const fn weakest_holder(permission: Permission) -> Role {
    use Permission::*;
    match permission {
        WorkflowsView | AgentsView | ProjectsRead | CostsView => Role::Viewer,
        WorkflowsCreate | WorkflowsExecute | AgentsExecute | MemoryManage => Role::Developer,
        WorkflowsApprove => Role::Reviewer,
        WorkflowsDelete | AgentsConfigure | ProjectsUpdate | ProjectsDelete | AuditRead => {
            Role::ProjectOwner
        }
        ProjectsCreate | UsersManage | MetricsRead => Role::OrgOwner,
        SettingsManage => Role::SuperAdmin,
    }
}

/// Whether `role` holds `permission`.
pub fn holds(role: Role, permission: Permission) -> bool {
    role >= weakest_holder(permission)
}

/// Everything `role` holds, in `Permission::ALL`'s order.
pub fn of_role(role: Role) -> Vec<Permission> {
    Permission::ALL
        .iter()
        .copied()
        .filter(|permission| holds(role, *permission))
        .collect()
}

/// `permissions` as a list for a message: "a, b, c".
pub fn listed(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|permission| permission.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grow_by_inclusion_and_only_reviewers_and_up_approve() {
        for pair in Role::ALL.windows(2) {
            let (lower, higher) = (of_role(pair[0]), of_role(pair[1]));
            assert!(
                lower.iter().all(|p| higher.contains(p)),
                "{} ⊄ {}",
                pair[0],
                pair[1]
            );
            assert!(higher.len() > lower.len(), "{} adds nothing", pair[1]);
        }
        assert!(!holds(Role::Developer, Permission::WorkflowsApprove));
        assert!(holds(Role::Reviewer, Permission::WorkflowsApprove));
        assert_eq!(of_role(Role::SuperAdmin), Permission::ALL);
        assert_eq!(
            of_role(Role::Viewer),
            [
                Permission::WorkflowsView,
                Permission::AgentsView,
                Permission::ProjectsRead,
                Permission::CostsView
            ]
        );
    }
}
